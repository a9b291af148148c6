//! The phase transitions: what happens in each phase. Start here to find what a run does
//! in phase X; the building blocks (one component, the webhooks, the restarts, the CA
//! Secret write) are in `planner.rs`.

use super::planner::{Cas, Planner, Target, add};
use super::*;
use crate::error::{Error, Origin};
use crate::generate::Ca;

impl Planner<'_> {
    pub(super) fn run(&mut self) -> Result<RotationPlan, Error> {
        let ca_ref = self.objects.ca_secret.clone();
        let Some(ca_secret) = self.observed.secrets.get(&ca_ref) else {
            return self.unmanaged();
        };
        let origin = Origin::new(format!("secret {ca_ref}"));
        let state = RotationState::from_secret(ca_secret, &origin)?;
        let cas = self.load_cas(ca_secret, &state, &origin)?;
        match (state.phase, state.strategy) {
            (Phase::Stable, _) => self.stable(ca_secret, &state, &cas),
            (Phase::Prepared, Strategy::Staged) => self.enter_trust(ca_secret, &state, &cas),
            (Phase::Prepared, Strategy::SingleStep) => self.single_step(ca_secret, &state, &cas),
            (Phase::Trust, _) => self.enter_leaves(ca_secret, &state, &cas),
            (Phase::Leaves, _) => self.after_leaves(ca_secret, &state, &cas),
            (Phase::Retire, _) => self.after_retire(ca_secret, &state),
        }
    }

    /// No CA Secret: a first install, or an install made without certrotate.
    pub(super) fn unmanaged(&mut self) -> Result<RotationPlan, Error> {
        let existing: Vec<String> = self
            .objects
            .components
            .iter()
            .filter(|r| self.observed.secrets.contains_key(*r))
            .map(ToString::to_string)
            .collect();
        if existing.is_empty() {
            let ca = Ca::generate(&self.profile.ca_params(), self.now, self.entropy)?;
            // No `since`: the too-soon guard protects the CA a previous rotation left in
            // the bundles, and a first install left none.
            let state = RotationState {
                phase: Phase::Stable,
                since: None,
                current: Some(ca.fingerprint()),
                next: None,
                previous: None,
                strategy: Strategy::Staged,
                drop_old_ca: false,
                rotate_hmac: false,
            };
            self.write_ca_secret(
                None,
                &state,
                Some(&ca),
                None,
                "first install: new CA".into(),
            );
            for c in &self.profile.components {
                let target = Target {
                    trust: Some(ca.cert_pem().as_bytes().to_vec()),
                    leaf_from: Some(&ca),
                };
                self.component(c, &target, "first install".into())?;
            }
            self.hmac(None)?;
            return Ok(self.finish(
                Phase::Stable,
                Phase::Stable,
                Next::Done,
                format!("installed: CA {}", ca.fingerprint().short()),
            ));
        }
        if !self.options.overwrite {
            return Ok(self.finish(
                Phase::Stable,
                Phase::Stable,
                Next::Done,
                format!(
                    "not managed yet: {} exist but the CA Secret {} does not (no CA key); \
                     nothing changed; run with --overwrite to adopt them with a new CA",
                    existing.join(", "),
                    self.objects.ca_secret
                ),
            ));
        }
        // Adoption: mint a CA and go through the same phases, bundling each Secret's
        // existing ca.crt; no old key is needed.
        let next = Ca::generate(&self.profile.ca_params(), self.now, self.entropy)?;
        let state = self.started_state(None, None, &next);
        self.write_ca_secret(
            None,
            &state,
            None,
            Some(&next),
            "adopting an existing install: next CA minted".into(),
        );
        Ok(self.finish(
            Phase::Stable,
            Phase::Prepared,
            Next::Continue,
            format!("adopting: next CA {} persisted", next.fingerprint().short()),
        ))
    }

    pub(super) fn stable(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
        cas: &Cas,
    ) -> Result<RotationPlan, Error> {
        let current = cas
            .current
            .as_ref()
            .ok_or_else(|| Error::InvalidRotationState {
                origin: Origin::new(format!("secret {}", self.objects.ca_secret)),
                reason: format!("phase stable without {KEY_CA_CRT} and {KEY_CA_KEY}"),
            })?;
        if self.options.overwrite {
            let earliest = state
                .since
                .map(|s| add(s, self.options.convergence_interval))
                .transpose()?;
            if let Some(earliest) = earliest.filter(|t| *t > self.now && !self.options.force) {
                return Ok(self.finish(
                    Phase::Stable,
                    Phase::Stable,
                    Next::Done,
                    format!(
                        "too soon to rotate: the last rotation ended at {}, a new one may \
                         start at {} (one convergence interval later) or now with --force",
                        crate::rfc3339(state.since.unwrap_or(self.now)),
                        crate::rfc3339(earliest)
                    ),
                ));
            }
            let next = Ca::generate(&self.profile.ca_params(), self.now, self.entropy)?;
            let new_state = self.started_state(Some(current), state.previous, &next);
            self.write_ca_secret(
                Some(ca_secret),
                &new_state,
                None,
                Some(&next),
                format!("rotation ({}): next CA minted", self.options.strategy),
            );
            return Ok(self.finish(
                Phase::Stable,
                Phase::Prepared,
                Next::Continue,
                format!("prepared: next CA {} persisted", next.fingerprint().short()),
            ));
        }

        // No rotation: create what is missing, renew what is about to expire.
        let mut changed = 0;
        for c in &self.profile.components {
            let secret = ObjectRef::new(&self.profile.namespace, &c.secret);
            let target = match self.observed.secrets.get(&secret) {
                None => Target {
                    trust: Some(current.cert_pem().as_bytes().to_vec()),
                    leaf_from: Some(current),
                },
                Some(s) if self.needs_renewal(s, &secret)? => {
                    changed += 1;
                    self.steps.push(Step::Note {
                        object: format!("secret {secret}"),
                        message: "leaf within the renewal window".into(),
                    });
                    Target {
                        trust: None,
                        leaf_from: Some(current),
                    }
                }
                Some(_) => Target {
                    trust: None,
                    leaf_from: None,
                },
            };
            let renew = target.trust.is_none() && target.leaf_from.is_some();
            let reason = if renew { "renewal" } else { "missing: created" };
            self.component_forced(c, &target, renew, reason.into())?;
        }
        self.hmac(None)?;
        if changed > 0 {
            self.restarts("renewed leaves", true)?;
        } else {
            self.restarts("recovering an unfinished restart", false)?;
        }
        let summary = if changed > 0 {
            format!(
                "renewed {changed} leaves from CA {}",
                current.fingerprint().short()
            )
        } else if self.writes_secrets() {
            "created missing Secrets".to_owned()
        } else {
            "up to date".to_owned()
        };
        Ok(self.finish(Phase::Stable, Phase::Stable, Next::Done, summary))
    }

    /// prepared → trust: every bundle gets the next CA; leaves unchanged.
    pub(super) fn enter_trust(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
        cas: &Cas,
    ) -> Result<RotationPlan, Error> {
        let next = self.next_ca(cas)?;
        for c in &self.profile.components {
            let secret = ObjectRef::new(&self.profile.namespace, &c.secret);
            let old = self.existing_trust(&secret, cas);
            let bundle = self.bundle(next, &old)?;
            let leaf_from = match self.observed.secrets.get(&secret) {
                // A component that does not exist yet gets a leaf at once; nobody talks to
                // it yet, so no peer can reject it. Prefer the current CA, which every peer
                // already trusts.
                None => Some(cas.current.as_ref().unwrap_or(next)),
                Some(_) => None,
            };
            let target = Target {
                trust: Some(bundle),
                leaf_from,
            };
            self.component(c, &target, "trust: bundle with the next CA".into())?;
        }
        self.webhooks(|this, old| this.bundle(next, old), "trust: next CA added")?;
        self.restarts("trust: the next CA must be loaded", true)?;
        let mut new_state = state.clone();
        new_state.phase = Phase::Trust;
        new_state.since = Some(self.now);
        self.write_ca_secret(
            Some(ca_secret),
            &new_state,
            None,
            None,
            "phase trust".into(),
        );
        let at = add(self.now, self.options.convergence_interval)?;
        Ok(self.finish(
            Phase::Prepared,
            Phase::Trust,
            Next::WaitUntil {
                at,
                reason: "bundles must converge before leaves change".into(),
            },
            format!(
                "trust: every bundle now carries CA {}",
                next.fingerprint().short()
            ),
        ))
    }

    /// trust → leaves: every leaf is issued by the next CA, which becomes current.
    pub(super) fn enter_leaves(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
        cas: &Cas,
    ) -> Result<RotationPlan, Error> {
        if let Some(wait) = self.wait_for_convergence(state)? {
            return Ok(self.finish(
                Phase::Trust,
                Phase::Trust,
                wait,
                "waiting: trust converging".into(),
            ));
        }
        let next = self.next_ca(cas)?;
        for c in &self.profile.components {
            let secret = ObjectRef::new(&self.profile.namespace, &c.secret);
            let old = self.existing_trust(&secret, cas);
            let target = Target {
                trust: Some(self.bundle(next, &old)?),
                leaf_from: Some(next),
            };
            self.component(c, &target, "leaves: issued by the new CA".into())?;
        }
        self.webhooks(|this, old| this.bundle(next, old), "trust: next CA added")?;
        if state.rotate_hmac {
            self.hmac(Some(next.fingerprint()))?;
        }
        self.restarts("leaves: the new leaf must be loaded", true)?;
        let new_state = self.promoted_state(state, Phase::Leaves);
        self.write_ca_secret(
            Some(ca_secret),
            &new_state,
            Some(next),
            None,
            "phase leaves: the next CA is now current".into(),
        );
        let at = add(self.now, self.options.convergence_interval)?;
        Ok(self.finish(
            Phase::Trust,
            Phase::Leaves,
            Next::WaitUntil {
                at,
                reason: "leaves must converge before the rotation ends".into(),
            },
            format!(
                "leaves: every leaf now issued by CA {}",
                next.fingerprint().short()
            ),
        ))
    }

    /// leaves → stable, or → retire with `drop_old_ca`.
    pub(super) fn after_leaves(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
        cas: &Cas,
    ) -> Result<RotationPlan, Error> {
        if let Some(wait) = self.wait_for_convergence(state)? {
            return Ok(self.finish(
                Phase::Leaves,
                Phase::Leaves,
                wait,
                "waiting: leaves converging".into(),
            ));
        }
        let current = cas
            .current
            .as_ref()
            .ok_or_else(|| Error::InvalidRotationState {
                origin: Origin::new(format!("secret {}", self.objects.ca_secret)),
                reason: format!("phase leaves without {KEY_CA_CRT}"),
            })?;
        if !state.drop_old_ca {
            let mut new_state = state.clone();
            new_state.phase = Phase::Stable;
            new_state.since = Some(self.now);
            self.write_ca_secret(
                Some(ca_secret),
                &new_state,
                None,
                None,
                "rotation done".into(),
            );
            return Ok(self.finish(
                Phase::Leaves,
                Phase::Stable,
                Next::Done,
                format!("done: CA {} is current", current.fingerprint().short()),
            ));
        }
        let only = current.cert_pem().as_bytes().to_vec();
        for c in &self.profile.components {
            let target = Target {
                trust: Some(only.clone()),
                // A leaf that does not chain to the current CA would lose its trust: reissue.
                leaf_from: Some(current),
            };
            self.component(c, &target, "retire: old CA dropped".into())?;
        }
        self.webhooks(|_, _| Ok(only.clone()), "retire: old CA dropped")?;
        self.restarts("retire: the old CA must be forgotten", true)?;
        let mut new_state = state.clone();
        new_state.phase = Phase::Retire;
        new_state.since = Some(self.now);
        self.write_ca_secret(
            Some(ca_secret),
            &new_state,
            None,
            None,
            "phase retire".into(),
        );
        let at = add(self.now, self.options.convergence_interval)?;
        Ok(self.finish(
            Phase::Leaves,
            Phase::Retire,
            Next::WaitUntil {
                at,
                reason: "bundles without the old CA must converge".into(),
            },
            format!(
                "retire: bundles carry only CA {}",
                current.fingerprint().short()
            ),
        ))
    }

    pub(super) fn after_retire(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
    ) -> Result<RotationPlan, Error> {
        if let Some(wait) = self.wait_for_convergence(state)? {
            return Ok(self.finish(
                Phase::Retire,
                Phase::Retire,
                wait,
                "waiting: retirement converging".into(),
            ));
        }
        let mut new_state = state.clone();
        new_state.phase = Phase::Stable;
        new_state.since = Some(self.now);
        self.write_ca_secret(
            Some(ca_secret),
            &new_state,
            None,
            None,
            "rotation done".into(),
        );
        Ok(self.finish(
            Phase::Retire,
            Phase::Stable,
            Next::Done,
            "done: old CA retired".into(),
        ))
    }

    /// Upstream's behaviour: bundle and new leaf in one write per Secret, then restarts.
    pub(super) fn single_step(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
        cas: &Cas,
    ) -> Result<RotationPlan, Error> {
        let next = self.next_ca(cas)?;
        for c in &self.profile.components {
            let secret = ObjectRef::new(&self.profile.namespace, &c.secret);
            let old = self.existing_trust(&secret, cas);
            let target = Target {
                trust: Some(self.bundle(next, &old)?),
                leaf_from: Some(next),
            };
            self.component(c, &target, "single-step: bundle and leaf".into())?;
        }
        self.webhooks(|this, old| this.bundle(next, old), "single-step: bundle")?;
        if state.rotate_hmac {
            self.hmac(Some(next.fingerprint()))?;
        }
        self.restarts("single-step: new CA and leaf", true)?;
        let new_state = self.promoted_state(state, Phase::Stable);
        self.write_ca_secret(
            Some(ca_secret),
            &new_state,
            Some(next),
            None,
            "rotation done (single-step)".into(),
        );
        Ok(self.finish(
            Phase::Prepared,
            Phase::Stable,
            Next::Done,
            format!(
                "done (single-step): CA {} is current",
                next.fingerprint().short()
            ),
        ))
    }
}
