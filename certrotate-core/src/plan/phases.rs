//! The phase transitions: what happens in each phase. Start here to find what a run does
//! in phase X; the building blocks (one component, the webhooks, the restarts, the CA
//! Secret write) are in `planner.rs`.
//!
//! | phase      | a run                                                                  |
//! |------------|------------------------------------------------------------------------|
//! | (no CA)    | [`Planner::unmanaged`]: install, or adopt with a rotation request        |
//! | `stable`   | [`Planner::stable`]: start a rotation, or create/renew what is missing   |
//! | `prepared` | [`Planner::enter_trust`] (staged) or [`Planner::single_step`]            |
//! | `trust`    | [`Planner::enter_leaves`], once trust converged                          |
//! | `leaves`   | [`Planner::after_leaves`]: end, or retire the old CA                     |
//! | `retire`   | [`Planner::after_retire`]: end, once retirement converged                |

use super::planner::{Cas, Planner, Target, add};
use super::*;
use crate::error::Error;
use crate::generate::Ca;

impl Planner<'_> {
    pub(super) fn run(&mut self) -> Result<RotationPlan, Error> {
        let ca_ref = self.objects.ca_secret.clone();
        let Some(ca_secret) = self.observed.secrets.get(&ca_ref) else {
            return self.unmanaged();
        };
        let state = RotationState::from_secret(ca_secret, &ca_ref)?;
        let cas = self.load_cas(ca_secret, &state)?;
        match (state.phase, state.strategy) {
            (Phase::Stable, _) => self.stable(ca_secret, &state, &cas),
            (Phase::Prepared, Strategy::Staged) => self.enter_trust(ca_secret, &state, &cas),
            (Phase::Prepared, Strategy::SingleStep) => self.single_step(ca_secret, &state, &cas),
            (Phase::Trust, _) => self.enter_leaves(ca_secret, &state, &cas),
            (Phase::Leaves, _) => self.after_leaves(ca_secret, &state, &cas),
            (Phase::Retire, _) => self.after_retire(ca_secret, &state, &cas),
        }
    }

    /// No CA Secret: a first install, or an install made without certrotate.
    pub(super) fn unmanaged(&mut self) -> Result<RotationPlan, Error> {
        let existing: Vec<ObjectRef> = self
            .objects
            .components
            .iter()
            .filter(|r| self.observed.secrets.contains_key(*r))
            .cloned()
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
            self.write_ca_secret(None, &state, Some(&ca), None, StepReason::FirstInstall);
            for c in &self.profile.components {
                let target = Target {
                    trust: Some(ca.cert_pem().as_bytes().to_vec()),
                    leaf_from: Some(&ca),
                };
                self.component(c, &target, StepReason::FirstInstall)?;
            }
            self.hmac(None)?;
            let summary = Summary::Installed {
                ca: ca.fingerprint(),
            };
            return Ok(self.finish(Phase::Stable, Phase::Stable, Next::Done, summary));
        }
        if !self.options.overwrite {
            // Nothing of the TLS Secrets changes without a CA; a missing HMAC Secret needs
            // no CA and is created as certgen does.
            let summary = Summary::NotManaged {
                existing,
                ca_secret: self.objects.ca_secret.clone(),
            };
            return Ok(self.finish(Phase::Stable, Phase::Stable, Next::Done, summary));
        }
        // Adoption: mint a CA and go through the same phases, bundling each Secret's
        // existing ca.crt; no old key is needed.
        let next = Ca::generate(&self.profile.ca_params(), self.now, self.entropy)?;
        let state = self.started_state(None, None, &next);
        self.write_ca_secret(None, &state, None, Some(&next), StepReason::Adoption);
        let summary = Summary::Adopting {
            next: next.fingerprint(),
        };
        Ok(self.finish(Phase::Stable, Phase::Prepared, Next::Continue, summary))
    }

    /// stable: start a rotation if one is asked for (and the last one ended at least one
    /// convergence interval ago); otherwise create what is missing and renew what expires.
    pub(super) fn stable(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
        cas: &Cas,
    ) -> Result<RotationPlan, Error> {
        let current = self.current_ca(cas, Phase::Stable)?;
        if self.options.overwrite {
            if let Some(ended) = state.since
                && !self.options.force
            {
                let earliest = add(ended, self.options.convergence_interval)?;
                if earliest > self.now {
                    let next = Next::WaitUntil {
                        at: earliest,
                        reason: WaitReason::TooSoon { ended },
                    };
                    let summary = Summary::TooSoon { ended, earliest };
                    return Ok(self.finish(Phase::Stable, Phase::Stable, next, summary));
                }
            }
            let next = Ca::generate(&self.profile.ca_params(), self.now, self.entropy)?;
            let new_state = self.started_state(Some(current), state.previous, &next);
            let reason = StepReason::NextCaMinted {
                strategy: self.options.strategy,
            };
            self.write_ca_secret(Some(ca_secret), &new_state, None, Some(&next), reason);
            let summary = Summary::Prepared {
                next: next.fingerprint(),
            };
            return Ok(self.finish(Phase::Stable, Phase::Prepared, Next::Continue, summary));
        }

        // No rotation: create what is missing, renew what is about to expire.
        let mut renewed = 0;
        for c in &self.profile.components {
            let secret = ObjectRef::new(&self.profile.namespace, &c.secret);
            let (target, reason) = match self.observed.secrets.get(&secret) {
                None => (
                    Target {
                        trust: Some(current.cert_pem().as_bytes().to_vec()),
                        leaf_from: Some(current),
                    },
                    StepReason::Missing,
                ),
                Some(s) if self.needs_renewal(s, &secret)? => {
                    renewed += 1;
                    let note = Note::new(secret, NoteReason::WithinRenewalWindow);
                    self.steps.push(Step::Note(note));
                    let target = Target {
                        trust: None,
                        leaf_from: Some(current),
                    };
                    (target, StepReason::Renewal)
                }
                Some(_) => (
                    Target {
                        trust: None,
                        leaf_from: None,
                    },
                    StepReason::Missing,
                ),
            };
            self.component_forced(c, &target, reason == StepReason::Renewal, reason)?;
        }
        self.hmac(None)?;
        if renewed > 0 {
            self.restarts(StepReason::Renewal, true)?;
        } else {
            self.restarts(StepReason::UnfinishedRestart, false)?;
        }
        let summary = if renewed > 0 {
            Summary::Renewed {
                count: renewed,
                ca: current.fingerprint(),
            }
        } else if self.writes_secrets() {
            Summary::CreatedMissing
        } else {
            Summary::UpToDate
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
        let next = self.next_ca(cas, Phase::Prepared)?;
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
            self.component(c, &target, StepReason::TrustAdded)?;
        }
        self.webhooks(|this, old| this.bundle(next, old), StepReason::TrustAdded)?;
        self.restarts(StepReason::TrustAdded, true)?;
        let mut new_state = state.clone();
        new_state.phase = Phase::Trust;
        new_state.since = Some(self.now);
        let reason = StepReason::PhaseRecorded {
            phase: Phase::Trust,
        };
        self.write_ca_secret(Some(ca_secret), &new_state, None, None, reason);
        let next_step = self.converging(Phase::Trust)?;
        let summary = Summary::Trust {
            next: next.fingerprint(),
        };
        Ok(self.finish(Phase::Prepared, Phase::Trust, next_step, summary))
    }

    /// trust → leaves: every leaf is issued by the next CA, which becomes current.
    pub(super) fn enter_leaves(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
        cas: &Cas,
    ) -> Result<RotationPlan, Error> {
        if let Some(wait) = self.wait_for_convergence(state)? {
            let summary = Summary::Waiting {
                phase: Phase::Trust,
            };
            return Ok(self.finish(Phase::Trust, Phase::Trust, wait, summary));
        }
        let next = self.next_ca(cas, Phase::Trust)?;
        self.switch_leaves(ca_secret, state, cas, next, Phase::Leaves)?;
        let next_step = self.converging(Phase::Leaves)?;
        let summary = Summary::Leaves {
            ca: next.fingerprint(),
        };
        Ok(self.finish(Phase::Trust, Phase::Leaves, next_step, summary))
    }

    /// leaves → stable, or → retire with `drop_old_ca`.
    pub(super) fn after_leaves(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
        cas: &Cas,
    ) -> Result<RotationPlan, Error> {
        if let Some(wait) = self.wait_for_convergence(state)? {
            let summary = Summary::Waiting {
                phase: Phase::Leaves,
            };
            return Ok(self.finish(Phase::Leaves, Phase::Leaves, wait, summary));
        }
        let current = self.current_ca(cas, Phase::Leaves)?;
        if !state.drop_old_ca {
            return Ok(self.end_rotation(ca_secret, state, current, Phase::Leaves));
        }
        let only = current.cert_pem().as_bytes().to_vec();
        for c in &self.profile.components {
            let target = Target {
                trust: Some(only.clone()),
                // A leaf that does not chain to the current CA would lose its trust: reissue.
                leaf_from: Some(current),
            };
            self.component(c, &target, StepReason::OldCaDropped)?;
        }
        self.webhooks(|_, _| Ok(only.clone()), StepReason::OldCaDropped)?;
        self.restarts(StepReason::OldCaDropped, true)?;
        let mut new_state = state.clone();
        new_state.phase = Phase::Retire;
        new_state.since = Some(self.now);
        let reason = StepReason::PhaseRecorded {
            phase: Phase::Retire,
        };
        self.write_ca_secret(Some(ca_secret), &new_state, None, None, reason);
        let next_step = self.converging(Phase::Retire)?;
        let summary = Summary::Retire {
            ca: current.fingerprint(),
        };
        Ok(self.finish(Phase::Leaves, Phase::Retire, next_step, summary))
    }

    /// retire → stable, once the bundles without the old CA converged.
    pub(super) fn after_retire(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
        cas: &Cas,
    ) -> Result<RotationPlan, Error> {
        if let Some(wait) = self.wait_for_convergence(state)? {
            let summary = Summary::Waiting {
                phase: Phase::Retire,
            };
            return Ok(self.finish(Phase::Retire, Phase::Retire, wait, summary));
        }
        let current = self.current_ca(cas, Phase::Retire)?;
        Ok(self.end_rotation(ca_secret, state, current, Phase::Retire))
    }

    /// Upstream's behaviour: bundle and new leaf in one write per Secret, then restarts.
    pub(super) fn single_step(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
        cas: &Cas,
    ) -> Result<RotationPlan, Error> {
        let next = self.next_ca(cas, Phase::Prepared)?;
        self.switch_leaves(ca_secret, state, cas, next, Phase::Stable)?;
        let summary = Summary::Done {
            ca: next.fingerprint(),
            retired: false,
            strategy: Strategy::SingleStep,
        };
        Ok(self.finish(Phase::Prepared, Phase::Stable, Next::Done, summary))
    }

    // ---- shared by the phases above ----------------------------------------------------

    /// The leaf switch, shared by the staged `leaves` phase and single-step: every bundle
    /// carries `next`, every leaf is issued by it, HMAC keys rotate if asked, start-only
    /// workloads restart, and the CA Secret promotes `next` to current in phase `to`.
    fn switch_leaves(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
        cas: &Cas,
        next: &Ca,
        to: Phase,
    ) -> Result<(), Error> {
        let reason = match state.strategy {
            Strategy::Staged => StepReason::LeavesSwitched,
            Strategy::SingleStep => StepReason::SingleStep,
        };
        for c in &self.profile.components {
            let secret = ObjectRef::new(&self.profile.namespace, &c.secret);
            let old = self.existing_trust(&secret, cas);
            let target = Target {
                trust: Some(self.bundle(next, &old)?),
                leaf_from: Some(next),
            };
            self.component(c, &target, reason)?;
        }
        self.webhooks(|this, old| this.bundle(next, old), reason)?;
        if state.rotate_hmac {
            self.hmac(Some(next.fingerprint()))?;
        }
        self.restarts(reason, true)?;
        let new_state = self.promoted_state(state, to);
        let record = StepReason::PhaseRecorded { phase: to };
        self.write_ca_secret(Some(ca_secret), &new_state, Some(next), None, record);
        Ok(())
    }

    /// The last write of a rotation: back to stable, `since` = now (the too-soon guard
    /// counts from here).
    fn end_rotation(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
        current: &Ca,
        from: Phase,
    ) -> RotationPlan {
        let mut new_state = state.clone();
        new_state.phase = Phase::Stable;
        new_state.since = Some(self.now);
        let reason = StepReason::PhaseRecorded {
            phase: Phase::Stable,
        };
        self.write_ca_secret(Some(ca_secret), &new_state, None, None, reason);
        let summary = Summary::Done {
            ca: current.fingerprint(),
            retired: from == Phase::Retire,
            strategy: state.strategy,
        };
        self.finish(from, Phase::Stable, Next::Done, summary)
    }

    /// After entering `phase`: wait one convergence interval from now.
    fn converging(&self, phase: Phase) -> Result<Next, Error> {
        Ok(Next::WaitUntil {
            at: add(self.now, self.options.convergence_interval)?,
            reason: WaitReason::Converging { phase },
        })
    }
}
