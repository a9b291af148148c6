//! When a phase may advance: the convergence interval (the one a rotation started with),
//! then the rollouts of restarted workloads and restarts still pending, then what the
//! probed servers show (the evidence rule), with `--convergence-timeout` past which a
//! run stops waiting; and when a carried CA retires.

use std::time::Duration;

use time::OffsetDateTime;

use super::planner::*;
use super::*;
use crate::error::{Error, Origin};
use crate::fingerprint::Fingerprint;
use crate::inspect;

/// The convergence interval of the rotation `state` records (the one it started with),
/// unless the options replace it.
pub(super) fn interval_of(options: &RotationPolicy, state: &RotationState) -> Duration {
    match state.interval {
        Some(persisted) if !options.replace_interval => persisted,
        Some(_) | None => options.convergence_interval,
    }
}

/// What the phase of `state` still waits for before the next step: the convergence
/// interval since it began, then the rollouts of the restarted workloads.
pub(super) fn convergence_wait(
    objects: &ProfileObjects,
    observed: &Observed,
    options: &RotationPolicy,
    state: &RotationState,
    now: OffsetDateTime,
) -> Result<Option<Next>, Error> {
    let since = state.since.unwrap_or(OffsetDateTime::UNIX_EPOCH);
    if since > now && !options.accept_clock_skew {
        return Err(Error::InvalidRotationState {
            secret: objects.ca_secret.clone(),
            problem: Box::new(StateProblem::SinceInFuture { since, now }),
        });
    }
    let at = add(since, interval_of(options, state))?;
    if at > now && !(since > now && options.accept_clock_skew) {
        return Ok(Some(Next::WaitUntil {
            at,
            reason: WaitReason::Converging { phase: state.phase },
        }));
    }
    let rolling: Vec<WorkloadRef> = objects
        .workloads
        .iter()
        .filter(|w| {
            observed
                .workloads
                .get(*w)
                .is_some_and(|o| !o.rollout_complete || o.restart_pending)
        })
        .cloned()
        .collect();
    if !rolling.is_empty() {
        return Ok(Some(Next::WaitForRollout { workloads: rolling }));
    }
    // The interval is the minimum wait, for what no probe can see; where servers were
    // probed, the phase also waits for their evidence (never advancing without it).
    let lagging = lagging_endpoints(objects, observed, state, now);
    if !lagging.is_empty() {
        if let Some(limit) = options.convergence_timeout
            && add(since, limit)? <= now
        {
            return Err(Error::ConvergenceTimeout {
                secret: objects.ca_secret.clone(),
                phase: state.phase,
                // To the second: what a person reads.
                waited: Duration::from_secs(
                    u64::try_from((now - since).whole_seconds()).unwrap_or_default(),
                ),
                lagging: lagging.iter().map(ToString::to_string).collect(),
            });
        }
        return Ok(Some(Next::WaitUntil {
            at: add(now, EVIDENCE_RECHECK)?,
            reason: WaitReason::Evidence {
                phase: state.phase,
                lagging: lagging.len(),
            },
        }));
    }
    Ok(None)
}

/// How soon servers that lag are probed again.
pub(crate) const EVIDENCE_RECHECK: Duration = Duration::from_secs(10);

/// The probed endpoints that do not show yet what the persisted phase wrote: in `trust`,
/// those that verify clients without listing the next CA (`next-ca.crt`'s subject); in
/// `leaves`, those whose leaf the new CA (`ca.crt`, promoted) does not verify. A failed
/// probe lags. Empty where nothing was probed, in other phases, or when the CA Secret
/// lacks the certificate to compare with (the planner names that problem itself).
pub(crate) fn lagging_endpoints(
    objects: &ProfileObjects,
    observed: &Observed,
    state: &RotationState,
    now: OffsetDateTime,
) -> Vec<crate::evidence::Lagging> {
    let Some(probed) = observed.evidence.as_deref().filter(|p| !p.is_empty()) else {
        return Vec::new();
    };
    let Some(ca) = observed.secrets.get(&objects.ca_secret) else {
        return Vec::new();
    };
    match state.phase {
        Phase::Trust => {
            let Some(next) = ca
                .data
                .get(KEY_NEXT_CA_CRT)
                .and_then(|pem| crate::pem_blocks::certificates(pem, &Origin::default()).ok())
                .and_then(|ders| ders.into_iter().next())
                .and_then(|der| crate::evidence::CaName::subject_of(&der).ok())
            else {
                return Vec::new();
            };
            crate::evidence::judge_trust(probed, &next).lagging
        }
        Phase::Leaves => match ca.data.get(KEY_CA_CRT) {
            Some(new_ca) => crate::evidence::judge_leaves(probed, new_ca, now).lagging,
            None => Vec::new(),
        },
        Phase::Stable | Phase::Prepared | Phase::Retire => Vec::new(),
    }
}

/// The certificates every `ca.crt` and webhook `caBundle` carries besides the CA of
/// `keep` (an old CA kept after a rotation, certgen's CA after an adoption), each once,
/// with its end: what a retirement drops.
pub(super) fn carried(
    objects: &ProfileObjects,
    observed: &Observed,
    keep: &Fingerprint,
    now: OffsetDateTime,
) -> Vec<(Fingerprint, OffsetDateTime)> {
    let origin = Origin::default();
    let stores = objects
        .components
        .iter()
        .filter_map(|r| observed.secrets.get(r)?.data.get(KEY_TRUST))
        .chain(
            objects
                .webhooks
                .iter()
                .filter_map(|w| observed.webhooks.get(w))
                .flat_map(|w| w.ca_bundles.iter()),
        );
    let mut out: Vec<(Fingerprint, OffsetDateTime)> = Vec::new();
    for bundle in stores {
        for c in inspect::inspect_pem(bundle, &origin, now).unwrap_or_default() {
            if c.fingerprint != *keep && !out.iter().any(|(f, _)| *f == c.fingerprint) {
                out.push((c.fingerprint, c.not_after));
            }
        }
    }
    out
}

/// When the CAs `carried` besides the current one are retired after the rotation of
/// `state` ended at `ended`: its persisted `retire_after` (the options' for a state
/// written before it was persisted) after that, at the latest [`RETIRE_BEFORE_EXPIRY`]
/// before the first of them ends, never sooner than one convergence interval after it
/// ended. The planner retires then; `status` says when.
pub(super) fn retire_at(
    options: &RotationPolicy,
    state: &RotationState,
    ended: OffsetDateTime,
    carried: &[(Fingerprint, OffsetDateTime)],
) -> Result<OffsetDateTime, Error> {
    let after = state.retire_after.unwrap_or(options.retire_after);
    // A retire-after too long to add is "not before the CA nears its end".
    let by_age = add(ended, after).ok();
    let end = carried.iter().map(|(_, end)| *end).min().unwrap_or(ended);
    let latest = time::Duration::try_from(RETIRE_BEFORE_EXPIRY)
        .ok()
        .and_then(|d| end.checked_sub(d))
        .unwrap_or(end);
    let at = by_age.map_or(latest, |a| a.min(latest));
    Ok(at.max(add(ended, interval_of(options, state))?))
}
