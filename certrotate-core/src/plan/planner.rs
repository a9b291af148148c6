//! The planner's building blocks, shared by every phase: one component Secret, the HMAC
//! Secrets, the CA Secret write, the webhooks, the restarts, and the checks they need.

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;

use super::converge::{carried, convergence_wait};
use super::*;
use crate::error::{Error, Origin};
use crate::fingerprint::Fingerprint;
use crate::generate::{Ca, Entropy, HmacKey};
use crate::inspect;
use crate::pem_blocks;
use crate::profile::{ComponentSpec, Profile};
use crate::trust;

pub(super) struct Planner<'a> {
    pub(super) profile: &'a Profile,
    pub(super) objects: ProfileObjects,
    pub(super) observed: &'a Observed,
    pub(super) options: &'a RotationPolicy,
    pub(super) now: OffsetDateTime,
    pub(super) entropy: &'a mut dyn Entropy,
    pub(super) steps: Vec<Step>,
}

/// The CAs a step works with, loaded from the CA Secret.
pub(super) struct Cas {
    pub(super) current: Option<Ca>,
    pub(super) next: Option<Ca>,
}

/// What renewal says about one leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Renewal {
    /// Not within the renewal window.
    NotDue,
    /// Within it: re-issue from the current CA.
    Due,
    /// Within it, but it already ends when the CA does: only a CA rotation helps.
    CaLimited,
    /// Within it: re-issued from the current CA, but the new leaf still ends within it,
    /// when the CA does. Renewing gains a little; only a CA rotation gains the rest.
    DueCaLimited,
}

/// What a component Secret should look like after a step.
pub(super) struct Target<'c> {
    /// The new trust bundle, or `None` to keep it.
    pub(super) trust: Option<Vec<u8>>,
    /// Issue a new leaf from this CA unless the present one is already issued by it.
    pub(super) leaf_from: Option<&'c Ca>,
}

impl Planner<'_> {
    // ---- helpers ----------------------------------------------------------------------

    pub(super) fn finish(
        &mut self,
        from: Phase,
        to: Phase,
        next: Next,
        summary: Summary,
    ) -> RotationPlan {
        RotationPlan {
            from,
            to,
            steps: std::mem::take(&mut self.steps),
            next,
            summary,
        }
    }

    pub(super) fn writes_secrets(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s, Step::Secret(c) if c.action != SecretAction::Unchanged))
    }

    /// The state of a rotation that starts now; `request` is the id of the last request,
    /// kept unless this rotation starts for another one.
    pub(super) fn started_state(
        &self,
        current: Option<&Ca>,
        previous: Option<Fingerprint>,
        next: &Ca,
        request: Option<String>,
    ) -> RotationState {
        RotationState {
            phase: Phase::Prepared,
            since: Some(self.now),
            current: current.map(Ca::fingerprint),
            next: Some(next.fingerprint()),
            previous,
            strategy: self.options.strategy,
            drop_old_ca: self.options.drop_old_ca,
            rotate_hmac: self.options.rotate_hmac,
            interval: Some(self.options.convergence_interval),
            retire_after: Some(self.options.retire_after),
            request: match &self.options.trigger {
                Trigger::Once(id) => Some(id.clone()),
                Trigger::Never
                | Trigger::Now
                | Trigger::AwayFrom(_)
                | Trigger::Schedule { .. }
                | Trigger::Always => request,
            },
        }
    }

    pub(super) fn promoted_state(&self, state: &RotationState, phase: Phase) -> RotationState {
        RotationState {
            phase,
            since: Some(self.now),
            current: state.next,
            next: None,
            previous: state.current,
            ..state.clone()
        }
    }

    pub(super) fn wait_for_convergence(
        &self,
        state: &RotationState,
    ) -> Result<Option<Next>, Error> {
        convergence_wait(&self.objects, self.observed, self.options, state, self.now)
    }

    pub(super) fn load_cas(
        &self,
        secret: &ObservedSecret,
        state: &RotationState,
    ) -> Result<Cas, Error> {
        let origin = &Origin::new(format!("secret {}", self.objects.ca_secret));
        let load =
            |crt: &str, key: &str, expect: Option<Fingerprint>| -> Result<Option<Ca>, Error> {
                let (Some(c), Some(k)) = (secret.data.get(crt), secret.data.get(key)) else {
                    return Ok(None);
                };
                fn text<'v>(v: &'v [u8], origin: &Origin, k: &str) -> Result<&'v str, Error> {
                    std::str::from_utf8(v).map_err(|_| Error::MalformedPem {
                        origin: Origin::new(format!("{origin} key {k}")),
                        block: 1,
                        reason: "not ASCII text".into(),
                    })
                }
                let ca = Ca::from_pem_named(
                    text(c, origin, crt)?,
                    &Origin::new(format!("{origin} key {crt}")),
                    text(k, origin, key)?,
                    &Origin::new(format!("{origin} key {key}")),
                )?;
                if let Some(annotated) = expect.filter(|e| *e != ca.fingerprint()) {
                    return Err(self.invalid_state(StateProblem::FingerprintMismatch {
                        key: crt.to_owned(),
                        found: ca.fingerprint(),
                        annotated,
                    }));
                }
                Ok(Some(ca))
            };
        let next_expected = matches!(state.phase, Phase::Prepared | Phase::Trust);
        Ok(Cas {
            current: load(KEY_CA_CRT, KEY_CA_KEY, state.current)?,
            next: if next_expected {
                load(KEY_NEXT_CA_CRT, KEY_NEXT_CA_KEY, state.next)?
            } else {
                None
            },
        })
    }

    /// The next CA, which `phase` needs.
    pub(super) fn next_ca<'c>(&self, cas: &'c Cas, phase: Phase) -> Result<&'c Ca, Error> {
        self.required(cas.next.as_ref(), phase, (KEY_NEXT_CA_CRT, KEY_NEXT_CA_KEY))
    }

    /// The current CA, which `phase` needs.
    pub(super) fn current_ca<'c>(&self, cas: &'c Cas, phase: Phase) -> Result<&'c Ca, Error> {
        self.required(cas.current.as_ref(), phase, (KEY_CA_CRT, KEY_CA_KEY))
    }

    fn required<'c>(
        &self,
        ca: Option<&'c Ca>,
        phase: Phase,
        (crt, key): (&'static str, &'static str),
    ) -> Result<&'c Ca, Error> {
        ca.ok_or_else(|| self.invalid_state(StateProblem::MissingCa { phase, crt, key }))
    }
    /// The note for an object of the profile the store did not return: absent, or of a
    /// kind the store cannot hold.
    pub(super) fn absent(&self, object: impl Into<AnyRef>) -> Note {
        let object = object.into();
        let reason = if self.observed.unavailable.contains(&object) {
            NoteReason::NotHeldByStore
        } else {
            NoteReason::Absent
        };
        Note::new(object, reason)
    }

    pub(super) fn invalid_state(&self, problem: StateProblem) -> Error {
        Error::InvalidRotationState {
            secret: self.objects.ca_secret.clone(),
            problem: Box::new(problem),
        }
    }

    /// Whether some component Secret's `tls.crt` was signed by `ca` (whatever its
    /// validity now): the proof that this CA Secret is the install's, not one put there
    /// before it.
    pub(super) fn issued_a_leaf(&self, ca: &Ca) -> bool {
        self.objects.components.iter().any(|r| {
            self.observed
                .secrets
                .get(r)
                .and_then(|s| s.data.get(KEY_TLS_CRT))
                .is_some_and(|crt| signed_by(crt, ca))
        })
    }

    /// A Secret's current `ca.crt`, or the current CA for a Secret that has none.
    pub(super) fn existing_trust(&self, secret: &ObjectRef, cas: &Cas) -> Vec<u8> {
        self.observed
            .secrets
            .get(secret)
            .and_then(|s| s.data.get(KEY_TRUST))
            .cloned()
            .or_else(|| {
                cas.current
                    .as_ref()
                    .map(|c| c.cert_pem().as_bytes().to_vec())
            })
            .unwrap_or_default()
    }

    /// The CA certificates (PEM, one each) the leaves present now chain to, which every
    /// trust store must hold until the leaves change: the current CA; on an adoption (no
    /// current CA), each certificate of a component's `ca.crt` that signed a component's
    /// leaf (certgen's CA, as upstream copies it into the webhook `caBundle`).
    pub(super) fn anchors(&self, cas: &Cas) -> Vec<Vec<u8>> {
        if let Some(current) = &cas.current {
            return vec![current.cert_pem().as_bytes().to_vec()];
        }
        let origin = Origin::default();
        let leaves: Vec<&[u8]> = self
            .objects
            .components
            .iter()
            .filter_map(|r| self.observed.secrets.get(r)?.data.get(KEY_TLS_CRT))
            .map(Vec::as_slice)
            .collect();
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for r in &self.objects.components {
            let Some(trust) = self
                .observed
                .secrets
                .get(r)
                .and_then(|s| s.data.get(KEY_TRUST))
            else {
                continue;
            };
            for der in pem_blocks::certificates(trust, &origin).unwrap_or_default() {
                let fingerprint = Fingerprint::of(&der);
                let issues_a_leaf = leaves.iter().any(|l| signed_by_der(l, &der));
                if issues_a_leaf && !seen.contains(&fingerprint) {
                    seen.push(fingerprint);
                    let mut pem = String::new();
                    pem_blocks::push_certificate(&mut pem, &der, None);
                    out.push(pem.into_bytes());
                }
            }
        }
        out
    }

    /// The CAs the leaves of an install made without certrotate chain to ([`Self::anchors`]
    /// without a current CA), earliest end first.
    pub(super) fn existing_cas(&self) -> Vec<ExistingCa> {
        let none = Cas {
            current: None,
            next: None,
        };
        let mut out: Vec<ExistingCa> = self
            .anchors(&none)
            .iter()
            .filter_map(|pem| {
                let c = inspect::inspect_pem(pem, &Origin::default(), self.now).ok()?;
                let c = c.into_iter().next()?;
                Some(ExistingCa {
                    fingerprint: c.fingerprint,
                    subject: c.subject,
                    not_after: c.not_after,
                })
            })
            .collect();
        out.sort_by_key(|c| c.not_after);
        out
    }

    /// When the first of the component leaves present ends, if any can be read.
    pub(super) fn first_leaf_end(&self) -> Option<OffsetDateTime> {
        self.objects
            .components
            .iter()
            .filter_map(|r| self.observed.secrets.get(r)?.data.get(KEY_TLS_CRT))
            .filter_map(|crt| {
                let c = inspect::inspect_pem(crt, &Origin::default(), self.now).ok()?;
                Some(c.first()?.not_after)
            })
            .min()
    }

    /// The certificates the trust stores carry besides `current` ([`carried`]).
    pub(super) fn carried(&self, current: &Ca) -> Vec<(Fingerprint, OffsetDateTime)> {
        carried(
            &self.objects,
            self.observed,
            &current.fingerprint(),
            self.now,
        )
    }

    /// `old` with each of `anchors` it lacks put before it, so that the bundling rule
    /// carries them first: a store that lost the CA of the leaves peers present (a
    /// `caBundle` re-created empty, a `ca.crt` replaced) gets it back with the step that
    /// next writes it. `old` as it is when it lacks none.
    pub(super) fn holding(old: &[u8], anchors: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for anchor in anchors {
            let held = pem_blocks::certificates(anchor, &Origin::default())
                .is_ok_and(|ders| ders.iter().all(|d| holds(old, &Fingerprint::of(d))));
            if !held {
                out.extend_from_slice(anchor);
                if !anchor.ends_with(b"\n") {
                    out.push(b'\n');
                }
            }
        }
        out.extend_from_slice(old);
        out
    }

    pub(super) fn bundle(&self, new: &Ca, old: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(self
            .options
            .bundle_policy
            .bundle(new.cert_pem().as_bytes(), old, self.now)?
            .pem
            .into_bytes())
    }

    /// Whether the leaf of `s` must be renewed (within `renew_before`, or absent), and
    /// whether renewing it gains nothing because `ca` expires first (the leaf already
    /// ends when the CA does): then only rotating the CA helps.
    pub(super) fn renewal(
        &self,
        s: &ObservedSecret,
        secret: &ObjectRef,
        ca: &Ca,
    ) -> Result<Renewal, Error> {
        let Some(before) = self.options.renew_before else {
            return Ok(Renewal::NotDue);
        };
        let Some(crt) = s.data.get(KEY_TLS_CRT) else {
            return Ok(Renewal::Due);
        };
        let origin = Origin::new(format!("secret {secret} key {KEY_TLS_CRT}"));
        let ders = pem_blocks::certificates(crt, &origin)?;
        let leaf = inspect::parse(&ders[0], &origin, 1)?;
        let not_after = leaf.validity().not_after.to_datetime();
        if not_after >= add(self.now, before)? {
            return Ok(Renewal::NotDue);
        }
        if not_after >= ca.not_after() - time::Duration::seconds(1) {
            return Ok(Renewal::CaLimited);
        }
        // A new leaf ends when the CA does at the latest: within the window too.
        if ca.not_after() < add(self.now, before)? {
            return Ok(Renewal::DueCaLimited);
        }
        Ok(Renewal::Due)
    }

    pub(super) fn component(
        &mut self,
        c: &ComponentSpec,
        target: &Target<'_>,
        reason: StepReason,
    ) -> Result<(), Error> {
        self.component_forced(c, target, false, reason)
    }

    /// Plans one component Secret. With `force_leaf`, `leaf_from` issues a new leaf even if
    /// the present one is already issued by that CA (renewal).
    pub(super) fn component_forced(
        &mut self,
        c: &ComponentSpec,
        target: &Target<'_>,
        force_leaf: bool,
        reason: StepReason,
    ) -> Result<(), Error> {
        let secret = ObjectRef::new(&self.profile.namespace, &c.secret);
        let existing = self.observed.secrets.get(&secret);
        let mut data = BTreeMap::new();
        if let Some(trust) = &target.trust
            && existing.and_then(|s| s.data.get(KEY_TRUST)) != Some(trust)
        {
            data.insert(
                KEY_TRUST.to_owned(),
                Some(SecretValue::Public(trust.clone())),
            );
        }
        if let Some(ca) = target.leaf_from {
            let current_leaf =
                existing.and_then(|s| Some((s.data.get(KEY_TLS_CRT)?, s.data.get(KEY_TLS_KEY)?)));
            let keep = !force_leaf
                && current_leaf.is_some_and(|(crt, _)| leaf_issued_by(crt, ca, self.now));
            if !keep {
                let params = self.profile.leaf_params(c)?;
                let leaf = ca.issue_leaf(&params, self.now, self.entropy)?;
                data.insert(
                    KEY_TLS_CRT.to_owned(),
                    Some(SecretValue::Public(leaf.cert_pem.into_bytes())),
                );
                data.insert(
                    KEY_TLS_KEY.to_owned(),
                    Some(SecretValue::private(
                        leaf.key_pem.expose_secret().as_bytes(),
                    )),
                );
            }
        }
        let change = self.secret_change(
            secret,
            existing,
            &c.secret_type,
            data,
            BTreeMap::new(),
            reason,
        );
        self.steps.push(Step::Secret(change));
        Ok(())
    }

    /// Creates every missing HMAC Secret (and a missing key in an existing one). Runs at
    /// the start of every plan, whatever the phase or mode: upstream creates a missing HMAC
    /// Secret on every run, and a missing one breaks upgrades. It needs no CA.
    pub(super) fn hmac_missing(&mut self) -> Result<(), Error> {
        for h in &self.profile.hmac {
            let secret = ObjectRef::new(&self.profile.namespace, &h.secret);
            let existing = self.observed.secrets.get(&secret);
            let mut data = BTreeMap::new();
            // A key shorter than any this tool generates (an empty file, a truncated
            // write) is no HMAC key: it is replaced like a missing one.
            let present = existing.and_then(|s| s.data.get(&h.key)).map(Vec::len);
            let (reason, replace) = match (existing, present) {
                (None, _) => (StepReason::Missing, true),
                (Some(_), None) => (StepReason::HmacKeyMissing, true),
                (Some(_), Some(length)) if length < HmacKey::MIN_LEN => {
                    (StepReason::HmacKeyTooShort { length }, true)
                }
                // The key is kept; only labels may change (and with none, nothing does).
                (Some(_), Some(_)) => (StepReason::HmacKeyMissing, false),
            };
            if replace {
                let key = HmacKey::generate(h.length, self.entropy)?;
                data.insert(
                    h.key.clone(),
                    Some(SecretValue::private(key.expose_secret())),
                );
            }
            let change =
                self.secret_change(secret, existing, "Opaque", data, BTreeMap::new(), reason);
            self.steps.push(Step::Secret(change));
        }
        Ok(())
    }

    /// Rotates the existing HMAC Secrets once for the rotation to `rotation` (missing ones
    /// were created fresh at the start of the plan).
    pub(super) fn hmac_rotate(&mut self, rotation: Fingerprint) -> Result<(), Error> {
        for h in &self.profile.hmac {
            let secret = ObjectRef::new(&self.profile.namespace, &h.secret);
            let Some(existing) = self.observed.secrets.get(&secret) else {
                continue;
            };
            let mut data = BTreeMap::new();
            let mut annotations = BTreeMap::new();
            if existing.annotations.get(ANNOTATION_HMAC_ROTATION) != Some(&rotation.to_string()) {
                let key = HmacKey::generate(h.length, self.entropy)?;
                data.insert(
                    h.key.clone(),
                    Some(SecretValue::private(key.expose_secret())),
                );
                annotations.insert(
                    ANNOTATION_HMAC_ROTATION.to_owned(),
                    Some(rotation.to_string()),
                );
            }
            let reason = StepReason::HmacRotation;
            let change =
                self.secret_change(secret, Some(existing), "Opaque", data, annotations, reason);
            self.steps.push(Step::Secret(change));
        }
        Ok(())
    }

    pub(super) fn secret_change(
        &self,
        secret: ObjectRef,
        existing: Option<&ObservedSecret>,
        secret_type: &str,
        data: BTreeMap<String, Option<SecretValue>>,
        annotations: BTreeMap<String, Option<String>>,
        reason: StepReason,
    ) -> SecretChange {
        let mut wanted = self.profile.labels.clone();
        if secret == self.objects.ca_secret {
            // What a controller selects the CA Secrets of every control plane by.
            wanted.insert(LABEL_CA.to_owned(), "true".to_owned());
        }
        let labels: BTreeMap<String, String> = match existing {
            None => wanted,
            Some(s) => wanted
                .into_iter()
                .filter(|(k, v)| s.labels.get(k) != Some(v))
                .collect(),
        };
        let annotations: BTreeMap<String, Option<String>> = match existing {
            None => annotations
                .into_iter()
                .filter(|(_, v)| v.is_some())
                .collect(),
            Some(s) => annotations
                .into_iter()
                .filter(|(k, v)| s.annotations.get(k) != v.as_ref())
                .collect(),
        };
        let data: BTreeMap<String, Option<SecretValue>> = match existing {
            None => data.into_iter().filter(|(_, v)| v.is_some()).collect(),
            Some(s) => data
                .into_iter()
                .filter(|(k, v)| match v {
                    Some(v) => s.data.get(k).map(Vec::as_slice) != Some(v.expose_secret()),
                    None => s.data.contains_key(k),
                })
                .collect(),
        };
        let (action, reason) = match existing {
            None => (SecretAction::Create, reason),
            Some(_) if data.is_empty() && labels.is_empty() && annotations.is_empty() => {
                (SecretAction::Unchanged, StepReason::AlreadyInTargetState)
            }
            Some(s) => (
                SecretAction::Update {
                    expected_version: s.version.clone(),
                },
                reason,
            ),
        };
        SecretChange {
            secret,
            action,
            secret_type: existing.map_or_else(|| secret_type.to_owned(), |s| s.secret_type.clone()),
            data,
            labels,
            annotations,
            reason,
        }
    }

    /// Plans the CA Secret write that persists `state`: with `promote`, that CA becomes
    /// current and the next-CA keys are removed; with `next`, it is persisted as next.
    pub(super) fn write_ca_secret(
        &mut self,
        existing: Option<&ObservedSecret>,
        state: &RotationState,
        promote: Option<&Ca>,
        next: Option<&Ca>,
        reason: StepReason,
    ) {
        let mut data = BTreeMap::new();
        let public = |ca: &Ca| Some(SecretValue::Public(ca.cert_pem().as_bytes().to_vec()));
        let private = |ca: &Ca| {
            Some(SecretValue::private(
                ca.key_pem().expose_secret().as_bytes(),
            ))
        };
        if let Some(ca) = promote {
            data.insert(KEY_CA_CRT.to_owned(), public(ca));
            data.insert(KEY_CA_KEY.to_owned(), private(ca));
            data.insert(KEY_NEXT_CA_CRT.to_owned(), None);
            data.insert(KEY_NEXT_CA_KEY.to_owned(), None);
        }
        if let Some(ca) = next {
            data.insert(KEY_NEXT_CA_CRT.to_owned(), public(ca));
            data.insert(KEY_NEXT_CA_KEY.to_owned(), private(ca));
        }
        let secret = self.objects.ca_secret.clone();
        let change = self.secret_change(
            secret,
            existing,
            "Opaque",
            data,
            state.annotations(),
            reason,
        );
        self.steps.push(Step::Secret(change));
    }

    pub(super) fn webhooks(
        &mut self,
        mut bundle: impl FnMut(&Self, &[u8]) -> Result<Vec<u8>, Error>,
        reason: StepReason,
    ) -> Result<(), Error> {
        for webhook in self.objects.webhooks.clone() {
            let Some(observed) = self.observed.webhooks.get(&webhook) else {
                let note = self.absent(webhook);
                self.steps.push(Step::Note(note));
                continue;
            };
            let bundles = observed
                .ca_bundles
                .iter()
                .map(|old| bundle(self, old))
                .collect::<Result<Vec<_>, _>>()?;
            if bundles != observed.ca_bundles {
                self.steps.push(Step::Webhook(WebhookChange {
                    webhook,
                    expected_version: observed.version.clone(),
                    ca_bundles: bundles,
                    reason,
                }));
            }
        }
        Ok(())
    }

    /// Puts `ca` into every webhook `caBundle` that lacks it, or that carries an expired
    /// certificate (bundled with what is there, by the bundling rule): on install, and on
    /// any stable run where a `caBundle` was reset or never written. Absent configurations
    /// are skipped silently here.
    pub(super) fn webhooks_trust(&mut self, ca: &Ca, reason: StepReason) -> Result<(), Error> {
        for webhook in self.objects.webhooks.clone() {
            let Some(observed) = self.observed.webhooks.get(&webhook) else {
                continue;
            };
            let fine = |b: &[u8]| trusts(b, ca) && !carries_expired(b, self.now);
            if observed.ca_bundles.iter().all(|b| fine(b)) {
                continue;
            }
            let bundles = observed
                .ca_bundles
                .iter()
                .map(|old| {
                    if fine(old) {
                        Ok(old.clone())
                    } else {
                        self.bundle(ca, old)
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.steps.push(Step::Webhook(WebhookChange {
                webhook,
                expected_version: observed.version.clone(),
                ca_bundles: bundles,
                reason,
            }));
        }
        Ok(())
    }

    /// The webhook `caBundle`s that lack `ca` (absent configurations have none).
    pub(super) fn webhooks_lacking(&self, ca: &Ca) -> Vec<crate::trust::TrustStore> {
        super::status::webhooks_lacking(&self.objects, self.observed, &ca.fingerprint())
    }
}

/// Whether the PEM `bundle` carries a certificate that expired before `now` (a previous CA
/// at the end of its life): it trusts nothing any more and only makes `check` fail.
pub(super) fn carries_expired(bundle: &[u8], now: OffsetDateTime) -> bool {
    let origin = Origin::default();
    pem_blocks::certificates(bundle, &origin).is_ok_and(|ders| {
        ders.iter().enumerate().any(|(i, der)| {
            inspect::parse(der, &origin, i + 1)
                .is_ok_and(|c| c.validity().not_after.to_datetime() < now)
        })
    })
}

/// Whether the PEM `bundle` carries `ca`'s certificate.
pub(super) fn trusts(bundle: &[u8], ca: &Ca) -> bool {
    holds(bundle, &ca.fingerprint())
}

/// Whether the PEM `bundle` carries the certificate of `fingerprint`.
pub(crate) fn holds(bundle: &[u8], fingerprint: &Fingerprint) -> bool {
    pem_blocks::certificates(bundle, &Origin::default())
        .is_ok_and(|ders| ders.iter().any(|d| Fingerprint::of(d) == *fingerprint))
}

/// Whether the first certificate of the PEM `crt` carries a signature of the key of the
/// certificate `issuer` (DER): whether `issuer` issued it (whatever the validity of
/// either). The planner's adoption anchors and `check`'s carried CAs both ask this.
pub(crate) fn signed_by_der(crt: &[u8], issuer: &[u8]) -> bool {
    let Ok(ders) = pem_blocks::certificates(crt, &Origin::default()) else {
        return false;
    };
    let (Ok(leaf), Ok(ca_cert)) = (
        pem_blocks::parse_certificate(&ders[0]),
        pem_blocks::parse_certificate(issuer),
    ) else {
        return false;
    };
    ca_cert.is_ca() && leaf.verify_signature(Some(ca_cert.public_key())).is_ok()
}

/// Whether the first certificate of `crt` carries a signature of `ca`'s key (whatever
/// its validity, usages or names: proof of who issued it, not a trust verdict).
pub(super) fn signed_by(crt: &[u8], ca: &Ca) -> bool {
    signed_by_der(crt, ca.cert_der())
}

/// Whether `crt` is a leaf issued by `ca` and valid at `now` (for TLS server or client
/// authentication, as the trust check verifies it).
fn leaf_issued_by(crt: &[u8], ca: &Ca, now: OffsetDateTime) -> bool {
    let origin = Origin::default();
    trust::verify_pair_any_usage(crt, &origin, ca.cert_pem().as_bytes(), &origin, now).is_trusted()
}

/// `t + d` in UTC, or [`Error::TimeOutOfRange`] past the year 9999 (or a `t` outside the
/// years `time` converts to UTC): never a panic, whatever a persisted time says.
pub(super) fn add(t: OffsetDateTime, d: Duration) -> Result<OffsetDateTime, Error> {
    time::Duration::try_from(d)
        .ok()
        .zip(crate::in_range(t))
        .and_then(|(d, t)| t.checked_add(d))
        .and_then(crate::in_range)
        .ok_or(Error::TimeOutOfRange {
            base: t,
            duration: d,
        })
}
