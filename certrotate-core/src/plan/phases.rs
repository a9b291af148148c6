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
//! | `stable`   | `retire_from_stable`: retire the old CA, asked for or `retire_after` on    |
//! | `retire`   | [`Planner::after_retire`]: end, once retirement converged                |

use super::converge::{interval_of, retire_at};
use super::planner::{Cas, Planner, Renewal, Target, add, carries_expired};
use std::collections::BTreeMap;

use super::*;
use crate::error::Error;
use crate::generate::Ca;

/// What the CA Secret holds when a phase runs: the Secret, its decoded state, its CAs.
pub(super) struct Persisted<'s> {
    secret: &'s ObservedSecret,
    state: RotationState,
    cas: Cas,
}

impl Planner<'_> {
    pub(super) fn run(&mut self) -> Result<RotationPlan, Error> {
        // Every plan, in every phase and mode, creates a missing HMAC Secret first.
        self.hmac_missing()?;
        let ca_ref = self.objects.ca_secret.clone();
        let Some(ca_secret) = self.observed.secrets.get(&ca_ref) else {
            return self.unmanaged();
        };
        let mut state = RotationState::from_secret(ca_secret, &ca_ref)?;
        if self.options.replace_interval && state.phase != Phase::Stable {
            // Persisted with the phase's next write, so later runs keep it.
            state.interval = Some(self.options.convergence_interval);
        }
        let loaded = self.load_cas(ca_secret, &state);
        let usable = loaded.as_ref().is_ok_and(|cas| cas.current.is_some());
        if state.phase == Phase::Stable && !usable && self.recovery_requested(&state) {
            // The current CA is unusable (weak, not a CA, expired, its key missing or not
            // its own): a requested rotation goes away from it through the same phases.
            return self.recover(ca_secret, &state);
        }
        let cas = loaded?;
        if self.options.replace_interval
            && state.phase != Phase::Stable
            && let Some(current) = &cas.current
        {
            self.check_interval(current)?;
        }
        // What a phase wrote must reach every component before the next step.
        if let Some(plan) = self.still_converging(&state)? {
            return Ok(plan);
        }
        let at = Persisted {
            secret: ca_secret,
            state,
            cas,
        };
        match (at.state.phase, at.state.strategy) {
            (Phase::Stable, _) => self.stable(&at),
            (Phase::Prepared, Strategy::Staged) => self.enter_trust(&at),
            (Phase::Prepared, Strategy::SingleStep) => self.single_step(&at),
            (Phase::Trust, _) => self.enter_leaves(&at),
            (Phase::Leaves, _) => self.after_leaves(&at),
            (Phase::Retire, _) => self.after_retire(&at),
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
                interval: None,
                retire_after: None,
                request: None,
            };
            self.write_ca_secret(None, &state, Some(&ca), None, StepReason::FirstInstall);
            for c in &self.profile.components {
                let target = Target {
                    trust: Some(ca.cert_pem().as_bytes().to_vec()),
                    leaf_from: Some(&ca),
                };
                self.component(c, &target, StepReason::FirstInstall)?;
            }
            self.webhooks_trust(&ca, StepReason::FirstInstall)?;
            let summary = Summary::Installed {
                ca: ca.fingerprint(),
            };
            return Ok(self.finish(Phase::Stable, Phase::Stable, Next::Done, summary));
        }
        let cas = self.existing_cas();
        let Some(trigger) = self.adoption(&cas)? else {
            // Nothing of the TLS Secrets changes without a CA; a missing HMAC Secret needs
            // no CA and was created at the start of the plan, as certgen does.
            let summary = Summary::NotManaged {
                existing,
                ca_secret: self.objects.ca_secret.clone(),
                cas,
            };
            return Ok(self.finish(Phase::Stable, Phase::Stable, Next::Done, summary));
        };
        // Adoption: mint a CA and go through the same phases, bundling each Secret's
        // existing ca.crt; no old key is needed.
        let next = Ca::generate(&self.profile.ca_params(), self.now, self.entropy)?;
        let state = self.started_state(None, None, &next, None);
        self.write_ca_secret(None, &state, None, Some(&next), StepReason::Adoption);
        let summary = Summary::Adopting {
            next: next.fingerprint(),
            trigger,
        };
        Ok(self.finish(Phase::Stable, Phase::Prepared, Next::Continue, summary))
    }

    /// stable → retire, when the bundles carry a CA besides the current one (the previous
    /// CA after a rotation, certgen's after an adoption; no current leaf chains to it) and
    /// either [`RotationPolicy::drop_old_ca`] asks for it now or the persisted
    /// [`RotationState::retire_after`] passed since the last rotation ended (at the latest
    /// [`RETIRE_BEFORE_EXPIRY`] before the carried CA's end, never sooner than one
    /// convergence interval after it ended). Called when nothing else is to be done.
    fn retire_from_stable(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
        current: &Ca,
    ) -> Result<Option<RotationPlan>, Error> {
        let carried = self.carried(current);
        let asked = self.options.drop_old_ca;
        if carried.is_empty() {
            if asked {
                let note = Note::new(self.objects.ca_secret.clone(), NoteReason::NothingToRetire);
                self.steps.push(Step::Note(note));
            }
            return Ok(None);
        }
        let interval = interval_of(self.options, state);
        let reason = match state.since {
            // The too-soon guard: leaves of the rotation that just ended (single-step)
            // may not be loaded everywhere yet.
            Some(ended)
                if asked && !self.options.skip_too_soon && add(ended, interval)? > self.now =>
            {
                let earliest = add(ended, interval)?;
                let next = Next::WaitUntil {
                    at: earliest,
                    reason: WaitReason::TooSoon { ended },
                };
                let summary = Summary::TooSoon { ended, earliest };
                return Ok(Some(self.finish(
                    Phase::Stable,
                    Phase::Stable,
                    next,
                    summary,
                )));
            }
            _ if asked => RetireReason::Asked,
            // No rotation ended yet: nothing was carried by certrotate.
            None => return Ok(None),
            Some(ended) => {
                if retire_at(self.options, state, ended, &carried)? > self.now {
                    return Ok(None);
                }
                RetireReason::Scheduled { ended }
            }
        };
        self.retire_bundles(current)?;
        let summary = Summary::Retire {
            ca: current.fingerprint(),
            reason,
        };
        self.enter(ca_secret, state, Phase::Retire, summary)
            .map(Some)
    }

    /// stable: start a rotation if the policy says so (and the last one ended at least one
    /// of its convergence intervals ago); otherwise create what is missing, renew what
    /// expires, and put the current CA into webhook `caBundle`s that lack it.
    pub(super) fn stable(&mut self, at: &Persisted<'_>) -> Result<RotationPlan, Error> {
        let (ca_secret, state, cas) = (at.secret, &at.state, &at.cas);
        let current = self.current_ca(cas, Phase::Stable)?;
        if !self.options.trust_existing_ca && !self.issued_a_leaf(current) {
            return Err(Error::UnprovenCaSecret {
                secret: self.objects.ca_secret.clone(),
                ca: current.fingerprint(),
            });
        }
        let mut trigger = self.trigger(state, current)?;

        // Create what is missing, and find which leaves need renewal.
        let mut renew = Vec::new();
        let mut ca_limited = 0;
        for c in &self.profile.components {
            let secret = ObjectRef::new(&self.profile.namespace, &c.secret);
            match self.observed.secrets.get(&secret) {
                None => renew.push((c, StepReason::Missing)),
                Some(s) => {
                    // A tls.key that is missing, unreadable or not tls.crt's: re-issue the
                    // leaf from the current CA (trust unchanged).
                    let broken_key = match s.data.get(KEY_TLS_CRT) {
                        Some(crt) => crate::keypair::key_problem(
                            crt,
                            s.data.get(KEY_TLS_KEY).map(Vec::as_slice),
                        )
                        .is_some(),
                        None => true,
                    };
                    if broken_key {
                        renew.push((c, StepReason::KeyRepair));
                        continue;
                    }
                    // A ca.crt that lost the current CA, a leaf the current CA did not
                    // issue (replaced by hand, restored from a backup): repaired at once.
                    if let Some(reason) = self.drift(s, current) {
                        renew.push((c, reason));
                        continue;
                    }
                    match self.renewal(s, &secret, current)? {
                        Renewal::NotDue => {}
                        Renewal::Due => renew.push((c, StepReason::Renewal)),
                        Renewal::CaLimited => ca_limited += 1,
                        Renewal::DueCaLimited => {
                            renew.push((c, StepReason::Renewal));
                            ca_limited += 1;
                        }
                    }
                    if s.data
                        .get(KEY_TRUST)
                        .is_some_and(|b| carries_expired(b, self.now))
                    {
                        renew.push((c, StepReason::ExpiredCaDropped));
                    }
                }
            }
        }
        if ca_limited > 0
            && trigger.is_none()
            && matches!(self.options.trigger, Trigger::Schedule { .. })
        {
            trigger = Some(RotationTrigger::CaLimitsLeaves);
        }
        if let Some(trigger) = trigger {
            return self.start_rotation(ca_secret, state, current, trigger);
        }
        if renew.is_empty()
            && ca_limited == 0
            && self.webhooks_lacking(current).is_empty()
            && let Some(plan) = self.retire_from_stable(ca_secret, state, current)?
        {
            return Ok(plan);
        }

        let mut renewed = 0;
        let mut trimmed = 0;
        let mut repaired = 0;
        for (c, reason) in renew {
            let secret = ObjectRef::new(&self.profile.namespace, &c.secret);
            let target = match reason {
                StepReason::Renewal => {
                    renewed += 1;
                    let note = Note::new(secret, NoteReason::WithinRenewalWindow);
                    self.steps.push(Step::Note(note));
                    Target {
                        trust: None,
                        leaf_from: Some(current),
                    }
                }
                StepReason::KeyRepair => {
                    renewed += 1;
                    Target {
                        trust: None,
                        leaf_from: Some(current),
                    }
                }
                StepReason::ExpiredCaDropped => {
                    // The bundling rule keeps the current CA and drops expired ones.
                    trimmed += 1;
                    let old = self.existing_trust(&secret, cas);
                    Target {
                        trust: Some(self.bundle(current, &old)?),
                        leaf_from: None,
                    }
                }
                StepReason::TrustRestored | StepReason::LeafReissued => {
                    repaired += 1;
                    self.drift_target(&secret, current, cas)?
                }
                _ => Target {
                    trust: Some(current.cert_pem().as_bytes().to_vec()),
                    leaf_from: Some(current),
                },
            };
            let force = matches!(reason, StepReason::Renewal | StepReason::KeyRepair);
            self.component_forced(c, &target, force, reason)?;
        }
        let webhooks = self.webhooks_lacking(current);
        self.webhooks_trust(current, StepReason::Missing)?;
        if renewed > 0 {
            self.restarts(StepReason::Renewal, true)?;
        } else if repaired > 0 {
            self.restarts(StepReason::TrustRestored, true)?;
        } else if trimmed > 0 {
            self.restarts(StepReason::ExpiredCaDropped, true)?;
        } else {
            self.restarts(StepReason::UnfinishedRestart, false)?;
        }
        let summary = if ca_limited > 0 {
            Summary::CaExpiresFirst {
                renewed,
                limited: ca_limited,
                ca_not_after: current.not_after(),
            }
        } else if renewed > 0 {
            Summary::Renewed {
                count: renewed,
                ca: current.fingerprint(),
            }
        } else if repaired > 0 || !webhooks.is_empty() {
            let (stores, leaves) = self.repaired(webhooks);
            Summary::Repaired {
                ca: current.fingerprint(),
                stores,
                leaves,
            }
        } else if self.writes_secrets() {
            Summary::CreatedMissing
        } else {
            Summary::UpToDate
        };
        Ok(self.finish(Phase::Stable, Phase::Stable, Next::Done, summary))
    }

    /// stable → prepared, away from an unusable current CA: the next CA is persisted and
    /// the unusable key is moved aside (kept, under `unusable-ca.key`) so that no later
    /// phase tries to load it. The phases then run as for an adoption; the bundling rule
    /// and the trust gate decide what of the old trust is carried.
    fn recover(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
    ) -> Result<RotationPlan, Error> {
        let next = Ca::generate(&self.profile.ca_params(), self.now, self.entropy)?;
        let new_state = self.started_state(None, state.current, &next, state.request.clone());
        let mut data = BTreeMap::new();
        data.insert(
            KEY_NEXT_CA_CRT.to_owned(),
            Some(SecretValue::Public(next.cert_pem().as_bytes().to_vec())),
        );
        data.insert(
            KEY_NEXT_CA_KEY.to_owned(),
            Some(SecretValue::private(
                next.key_pem().expose_secret().as_bytes(),
            )),
        );
        if let Some(key) = ca_secret.data.get(KEY_CA_KEY) {
            data.insert(
                KEY_UNUSABLE_CA_KEY.to_owned(),
                Some(SecretValue::private(key)),
            );
            data.insert(KEY_CA_KEY.to_owned(), None);
        }
        let trigger = RotationTrigger::Recovery;
        let reason = StepReason::NextCaMinted {
            strategy: self.options.strategy,
            trigger,
        };
        let secret = self.objects.ca_secret.clone();
        let change = self.secret_change(
            secret,
            Some(ca_secret),
            "Opaque",
            data,
            new_state.annotations(),
            reason,
        );
        self.steps.push(Step::Secret(change));
        let summary = Summary::Prepared {
            next: next.fingerprint(),
            trigger,
        };
        Ok(self.finish(Phase::Stable, Phase::Prepared, Next::Continue, summary))
    }

    /// stable → prepared: the next CA is minted and persisted, unless the last rotation
    /// ended less than one of its convergence intervals ago (a wait with its time).
    fn start_rotation(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
        current: &Ca,
        trigger: RotationTrigger,
    ) -> Result<RotationPlan, Error> {
        if let Some(ended) = state.since {
            if ended > self.now && !self.options.accept_clock_skew {
                return Err(self.invalid_state(StateProblem::SinceInFuture {
                    since: ended,
                    now: self.now,
                }));
            }
            let interval = interval_of(self.options, state);
            let earliest = add(ended, interval)?;
            if earliest > self.now && !self.options.skip_too_soon {
                let next = Next::WaitUntil {
                    at: earliest,
                    reason: WaitReason::TooSoon { ended },
                };
                let summary = Summary::TooSoon { ended, earliest };
                return Ok(self.finish(Phase::Stable, Phase::Stable, next, summary));
            }
        }
        self.check_interval(current)?;
        let next = Ca::generate(&self.profile.ca_params(), self.now, self.entropy)?;
        let new_state =
            self.started_state(Some(current), state.previous, &next, state.request.clone());
        let reason = StepReason::NextCaMinted {
            strategy: self.options.strategy,
            trigger,
        };
        self.write_ca_secret(Some(ca_secret), &new_state, None, Some(&next), reason);
        let summary = Summary::Prepared {
            next: next.fingerprint(),
            trigger,
        };
        Ok(self.finish(Phase::Stable, Phase::Prepared, Next::Continue, summary))
    }

    /// prepared → trust: every bundle gets the next CA; leaves unchanged.
    pub(super) fn enter_trust(&mut self, at: &Persisted<'_>) -> Result<RotationPlan, Error> {
        let (ca_secret, state, cas) = (at.secret, &at.state, &at.cas);
        let next = self.next_ca(cas, Phase::Prepared)?;
        self.distribute(cas, next, StepReason::TrustAdded)?;
        let summary = Summary::Trust {
            next: next.fingerprint(),
        };
        self.enter(ca_secret, state, Phase::Trust, summary)
    }

    /// What the trust phase writes: every bundle gets the next CA, and keeps (or gets back)
    /// the CAs of the leaves peers present now ([`Planner::anchors`]); a component that
    /// does not exist gets a leaf at once. Start-only workloads restart.
    fn distribute(&mut self, cas: &Cas, next: &Ca, reason: StepReason) -> Result<(), Error> {
        let anchors = self.anchors(cas);
        for c in &self.profile.components {
            let secret = ObjectRef::new(&self.profile.namespace, &c.secret);
            let old = Self::holding(&self.existing_trust(&secret, cas), &anchors);
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
            self.component(c, &target, reason)?;
        }
        self.webhooks(
            |this, old| this.bundle(next, &Self::holding(old, &anchors)),
            reason,
        )?;
        self.restarts(reason, true)
    }

    /// trust → leaves: every leaf is issued by the next CA, which becomes current. Unless
    /// a trust store lost the next CA since the trust phase wrote it (a webhook
    /// configuration re-created with an empty `caBundle` by a Helm hook, a `ca.crt`
    /// overwritten, a Secret deleted): then its peers would refuse the new leaves, so the
    /// phase is written again (the CA back in every store that lacks it) and converges
    /// again, from now.
    pub(super) fn enter_leaves(&mut self, at: &Persisted<'_>) -> Result<RotationPlan, Error> {
        let (ca_secret, state, cas) = (at.secret, &at.state, &at.cas);
        let next = self.next_ca(cas, Phase::Trust)?;
        let lacking =
            crate::plan::status::stores_lacking(&self.objects, self.observed, &next.fingerprint());
        if !lacking.is_empty() {
            self.distribute(cas, next, StepReason::TrustRestored)?;
            let summary = Summary::TrustRestored {
                next: next.fingerprint(),
                stores: lacking,
            };
            return self.enter(ca_secret, state, Phase::Trust, summary);
        }
        self.switch_leaves(ca_secret, state, cas, next, Phase::Leaves)?;
        let next_step = self.converging(Phase::Leaves, state)?;
        let summary = Summary::Leaves {
            ca: next.fingerprint(),
        };
        Ok(self.finish(Phase::Trust, Phase::Leaves, next_step, summary))
    }

    /// leaves → stable, or → retire with `drop_old_ca`.
    pub(super) fn after_leaves(&mut self, at: &Persisted<'_>) -> Result<RotationPlan, Error> {
        let (ca_secret, state, cas) = (at.secret, &at.state, &at.cas);
        let current = self.current_ca(cas, Phase::Leaves)?;
        if !state.drop_old_ca {
            self.repair_drift(current, cas)?;
            return Ok(self.end_rotation(ca_secret, state, current, Phase::Leaves));
        }
        self.retire_bundles(current)?;
        let summary = Summary::Retire {
            ca: current.fingerprint(),
            reason: RetireReason::WithRotation,
        };
        self.enter(ca_secret, state, Phase::Retire, summary)
    }

    /// What the retire phase writes: every bundle carries only `current`; start-only
    /// workloads restart.
    fn retire_bundles(&mut self, current: &Ca) -> Result<(), Error> {
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
        self.restarts(StepReason::OldCaDropped, true)
    }

    /// retire → stable, once the bundles without the old CA converged.
    pub(super) fn after_retire(&mut self, at: &Persisted<'_>) -> Result<RotationPlan, Error> {
        let (ca_secret, state, cas) = (at.secret, &at.state, &at.cas);
        let current = self.current_ca(cas, Phase::Retire)?;
        self.repair_drift(current, cas)?;
        Ok(self.end_rotation(ca_secret, state, current, Phase::Retire))
    }

    /// Upstream's behaviour: bundle and new leaf in one write per Secret, then restarts.
    pub(super) fn single_step(&mut self, at: &Persisted<'_>) -> Result<RotationPlan, Error> {
        let (ca_secret, state, cas) = (at.secret, &at.state, &at.cas);
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
        // Every bundle keeps (or gets back) the CAs of the leaves peers present until
        // they reload the new ones.
        let anchors = self.anchors(cas);
        for c in &self.profile.components {
            let secret = ObjectRef::new(&self.profile.namespace, &c.secret);
            let old = Self::holding(&self.existing_trust(&secret, cas), &anchors);
            let target = Target {
                trust: Some(self.bundle(next, &old)?),
                leaf_from: Some(next),
            };
            self.component(c, &target, reason)?;
        }
        self.webhooks(
            |this, old| this.bundle(next, &Self::holding(old, &anchors)),
            reason,
        )?;
        if state.rotate_hmac {
            self.hmac_rotate(next.fingerprint())?;
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

    /// The last write of a step that enters `to` (trust, retire): the CA Secret records the
    /// phase, and the next step waits one convergence interval from now.
    fn enter(
        &mut self,
        ca_secret: &ObservedSecret,
        state: &RotationState,
        to: Phase,
        summary: Summary,
    ) -> Result<RotationPlan, Error> {
        let mut new_state = state.clone();
        new_state.phase = to;
        new_state.since = Some(self.now);
        let reason = StepReason::PhaseRecorded { phase: to };
        self.write_ca_secret(Some(ca_secret), &new_state, None, None, reason);
        let next = self.converging(to, state)?;
        Ok(self.finish(state.phase, to, next, summary))
    }

    /// After entering `phase`: wait one convergence interval from now.
    fn converging(&self, phase: Phase, state: &RotationState) -> Result<Next, Error> {
        let interval = interval_of(self.options, state);
        Ok(Next::WaitUntil {
            at: add(self.now, interval)?,
            reason: WaitReason::Converging { phase },
        })
    }

    /// A plan that only waits, while the phase of `state` (trust, leaves, retire) is still
    /// converging. Stable and prepared do not wait.
    fn still_converging(&mut self, state: &RotationState) -> Result<Option<RotationPlan>, Error> {
        if matches!(state.phase, Phase::Stable | Phase::Prepared) {
            return Ok(None);
        }
        let Some(wait) = self.wait_for_convergence(state)? else {
            return Ok(None);
        };
        // A restart that did not happen (a host's command failed or was interrupted) is
        // asked for again: the phase waits for it, and nothing else would ask.
        self.pending_restarts()?;
        let summary = Summary::Waiting { phase: state.phase };
        Ok(Some(self.finish(state.phase, state.phase, wait, summary)))
    }
}
