//! A read-only view of where a rotation stands: the persisted state, what is missing, and
//! what the next run (without a rotation request) does and when. Unlike [`plan`](super::plan)
//! it generates no key and plans no write.

use serde::Serialize;
use time::OffsetDateTime;

use super::Strategy;
use super::converge::convergence_wait;
use super::planner::holds;
use super::{Next, ObjectRef, Observed, Phase, ProfileObjects, RotationPolicy, RotationState};
use crate::error::Error;
use crate::profile::Profile;
use crate::trust::TrustStore;

/// Where a rotation stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Status {
    /// The CA Secret.
    pub ca_secret: ObjectRef,
    /// The persisted state; `None` if the CA Secret does not exist.
    pub state: Option<RotationState>,
    /// Secrets of the profile that do not exist.
    pub missing: Vec<ObjectRef>,
    /// Trust stores that lack a CA they must hold at the persisted phase: what holds a
    /// rotation in the trust phase (the next CA), or what the next run restores.
    pub holds: Vec<Hold>,
    /// Each trust store and the CAs it holds, in order.
    pub trust_stores: Vec<super::StoreView>,
    /// Each component's leaf and the CA that issued it.
    pub leaves: Vec<super::LeafView>,
    /// What the next run does (without a rotation request).
    pub next_run: NextRun,
    /// When it may run.
    pub next: Next,
}

/// A trust store that lacks a CA it must hold at the persisted phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Hold {
    /// The store (a component's `ca.crt`, a webhook's `caBundle`).
    pub store: TrustStore,
    /// The CA it lacks.
    pub lacks: crate::Fingerprint,
    /// Which CA of the rotation that is.
    pub role: CaRole,
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} lacks the {} CA {}",
            self.store,
            self.role,
            self.lacks.short()
        )
    }
}

/// Which CA of a rotation a [`Hold`] names, or a CA name is
/// ([`crate::evidence::CaGenerations::role`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
// Closed on purpose: a rotation has a current and a next CA.
pub enum CaRole {
    /// The CA that issues the leaves now.
    Current,
    /// The CA the leaves switch to.
    Next,
}

impl std::fmt::Display for CaRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Current => "current",
            Self::Next => "next",
        })
    }
}

/// What the next run does, without a rotation request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum NextRun {
    /// Nothing exists: install.
    Install,
    /// Component Secrets exist without a CA Secret: nothing changes until a rotation is
    /// requested (which adopts them).
    NotManaged,
    /// Stable, with Secrets missing: create them.
    CreateMissing,
    /// Stable and complete: nothing (leaves are renewed by a renewal run).
    UpToDate,
    /// Stable, and the trust stores carry a CA besides the current one (the previous CA
    /// after a rotation): retired from them, staged, at `at` (now, or a later run's).
    Retire {
        /// When the retirement starts (`retire_after` after the last rotation ended).
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Stable, with trust stores that lost the current CA ([`Status::holds`]): restore it.
    Repair,
    /// Phase trust, with trust stores that lost the next CA ([`Status::holds`]): restore
    /// it and converge again before the leaves change.
    RestoreTrust,
    /// Mid-rotation: advance to this phase once [`Status::next`] allows.
    Advance {
        /// The phase the next step enters.
        to: Phase,
    },
}

/// Where the rotation of `profile` stands, from what was `observed`, at `now`.
pub fn status(
    profile: &Profile,
    observed: &Observed,
    options: &RotationPolicy,
    now: OffsetDateTime,
) -> Result<Status, Error> {
    let objects = ProfileObjects::of(profile).with_selected(observed);
    let missing: Vec<ObjectRef> = objects
        .secrets()
        .filter(|s| !observed.secrets.contains_key(*s))
        .cloned()
        .collect();
    let Some(secret) = observed.secrets.get(&objects.ca_secret) else {
        let any_component = objects
            .components
            .iter()
            .any(|c| observed.secrets.contains_key(c));
        let next_run = if any_component {
            NextRun::NotManaged
        } else {
            NextRun::Install
        };
        let (trust_stores, leaves) = super::views::views(&objects, observed, None, now);
        return Ok(Status {
            ca_secret: objects.ca_secret,
            state: None,
            missing,
            holds: Vec::new(),
            trust_stores,
            leaves,
            next_run,
            next: Next::Done,
        });
    };
    let state = RotationState::from_secret(secret, &objects.ca_secret)?;
    let to = match (state.phase, state.strategy) {
        (Phase::Stable, _) => None,
        (Phase::Prepared, Strategy::Staged) => Some(Phase::Trust),
        (Phase::Prepared, Strategy::SingleStep) => Some(Phase::Stable),
        (Phase::Trust, _) => Some(Phase::Leaves),
        (Phase::Leaves, _) if state.drop_old_ca => Some(Phase::Retire),
        (Phase::Leaves | Phase::Retire, _) => Some(Phase::Stable),
    };
    let mut holds = Vec::new();
    let mut hold = |fingerprint: Option<crate::Fingerprint>, role: CaRole| {
        let Some(fingerprint) = fingerprint else {
            return;
        };
        for store in stores_lacking(&objects, observed, &fingerprint) {
            holds.push(Hold {
                store,
                lacks: fingerprint,
                role,
            });
        }
    };
    if state.phase == Phase::Trust {
        hold(state.next, CaRole::Next);
    }
    hold(state.current, CaRole::Current);
    let restore_next = holds.iter().any(|h| h.role == CaRole::Next);
    let (next_run, next) = match to {
        None if !missing.is_empty() => (NextRun::CreateMissing, Next::Continue),
        None if !holds.is_empty() => (NextRun::Repair, Next::Continue),
        None => {
            let carried = match state.current {
                Some(current) => super::converge::carried(&objects, observed, &current, now),
                None => Vec::new(),
            };
            match state.since {
                Some(ended) if !carried.is_empty() => {
                    let at = super::converge::retire_at(options, &state, ended, &carried)?;
                    let next = if at <= now {
                        Next::Continue
                    } else {
                        Next::Done
                    };
                    (NextRun::Retire { at }, next)
                }
                Some(_) | None => (NextRun::UpToDate, Next::Done),
            }
        }
        Some(to) => {
            let wait = match state.phase {
                Phase::Prepared => None,
                Phase::Stable | Phase::Trust | Phase::Leaves | Phase::Retire => {
                    convergence_wait(&objects, observed, options, &state, now)?
                }
            };
            let next_run = if restore_next {
                NextRun::RestoreTrust
            } else {
                NextRun::Advance { to }
            };
            (next_run, wait.unwrap_or(Next::Continue))
        }
    };
    let (trust_stores, leaves) = super::views::views(&objects, observed, Some(&state), now);
    Ok(Status {
        ca_secret: objects.ca_secret,
        state: Some(state),
        missing,
        holds,
        trust_stores,
        leaves,
        next_run,
        next,
    })
}

/// The CA a rotation requested now would rotate away from: the current CA when stable or
/// while the next one is being distributed (prepared, trust), the previous one once the
/// next was promoted (leaves, retire), and `None` for an install certrotate does not manage
/// yet. A [`Trigger::AwayFrom`](super::Trigger::AwayFrom) built from it is
/// satisfied by the rotation in progress, so a person (or two racing Jobs) asking again
/// mid-rotation does not start another one.
pub fn rotation_base(
    profile: &Profile,
    observed: &Observed,
) -> Result<Option<crate::Fingerprint>, Error> {
    let objects = ProfileObjects::of(profile);
    let Some(secret) = observed.secrets.get(&objects.ca_secret) else {
        return Ok(None);
    };
    let state = RotationState::from_secret(secret, &objects.ca_secret)?;
    Ok(match state.phase {
        // A CA Secret without the `current-ca` annotation (a CA brought by the user, or
        // annotations dropped by GitOps or a restore) still issues every leaf from its
        // `ca.crt`: a request rotates away from that one, never from nothing.
        Phase::Stable | Phase::Prepared | Phase::Trust => match state.current {
            Some(current) => Some(current),
            None => unannotated_ca(secret, &objects.ca_secret)?,
        },
        Phase::Leaves | Phase::Retire => state.previous,
    })
}

/// The fingerprint of the CA a CA Secret's `ca.crt` holds (its first certificate), as
/// the planner loads it.
fn unannotated_ca(
    secret: &super::ObservedSecret,
    ca_secret: &ObjectRef,
) -> Result<Option<crate::Fingerprint>, Error> {
    let Some(pem) = secret.data.get(super::KEY_CA_CRT) else {
        return Ok(None);
    };
    let origin = crate::Origin::new(format!("secret {ca_secret} key {}", super::KEY_CA_CRT));
    let ders = crate::pem_blocks::certificates(pem, &origin)?;
    Ok(ders.first().map(|der| crate::Fingerprint::of(der)))
}

/// The component `ca.crt`s and webhook `caBundle`s that lack the CA of `fingerprint`:
/// existing Secrets without a `ca.crt` or whose `ca.crt` does not hold it, and every
/// `caBundle` of an existing webhook configuration that does not hold it (an empty one
/// included). Absent Secrets and configurations are not listed: they hold nothing to lose.
pub(crate) fn stores_lacking(
    objects: &ProfileObjects,
    observed: &Observed,
    fingerprint: &crate::Fingerprint,
) -> Vec<TrustStore> {
    let mut out: Vec<TrustStore> = objects
        .components
        .iter()
        .filter(|r| {
            observed.secrets.get(*r).is_some_and(|s| {
                !s.data
                    .get(super::KEY_TRUST)
                    .is_some_and(|b| holds(b, fingerprint))
            })
        })
        .map(|r| TrustStore::Component { secret: r.clone() })
        .collect();
    out.extend(webhooks_lacking(objects, observed, fingerprint));
    out
}

/// The webhook `caBundle`s of [`stores_lacking`].
pub(crate) fn webhooks_lacking(
    objects: &ProfileObjects,
    observed: &Observed,
    fingerprint: &crate::Fingerprint,
) -> Vec<TrustStore> {
    let mut out = Vec::new();
    for webhook in &objects.webhooks {
        let Some(w) = observed.webhooks.get(webhook) else {
            continue;
        };
        for (i, b) in w.ca_bundles.iter().enumerate() {
            if !holds(b, fingerprint) {
                out.push(TrustStore::Webhook {
                    webhook: webhook.clone(),
                    index: i + 1,
                });
            }
        }
    }
    out
}

/// The probed endpoints that do not show yet what the persisted phase wrote (see
/// [`Observed::evidence`]), each with what it still shows: empty where nothing was
/// probed, or in a phase no probe can judge.
pub fn lagging_endpoints(
    profile: &Profile,
    observed: &Observed,
    now: OffsetDateTime,
) -> Vec<crate::evidence::Lagging> {
    let objects = ProfileObjects::of(profile);
    let Some(secret) = observed.secrets.get(&objects.ca_secret) else {
        return Vec::new();
    };
    let Ok(state) = RotationState::from_secret(secret, &objects.ca_secret) else {
        return Vec::new();
    };
    super::converge::lagging_endpoints(&objects, observed, &state, now)
}
