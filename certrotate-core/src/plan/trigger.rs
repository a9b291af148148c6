//! What starts a rotation: the policy's [`Trigger`] read against the persisted state
//! and the current CA ([`Planner::trigger`] from `stable`, [`Planner::adoption`] for an
//! install certrotate did not make, [`Planner::recovery_requested`] away from an unusable
//! CA), and the interval check every new rotation passes first.

use super::planner::{Planner, add};
use super::*;
use crate::error::Error;
use crate::generate::Ca;

impl Planner<'_> {
    /// What adopts an install made without certrotate, if anything: a trigger that asks
    /// for a rotation, [`RotationPolicy::adopt`], or a schedule whose window covers the end
    /// of a CA that issued its leaves (`cas`), or of a leaf: with no CA key, nothing else
    /// could renew them before they expire.
    pub(super) fn adoption(&self, cas: &[ExistingCa]) -> Result<Option<RotationTrigger>, Error> {
        let schedule = match &self.options.trigger {
            Trigger::AwayFrom(None) | Trigger::Once(_) => {
                return Ok(Some(RotationTrigger::Request));
            }
            Trigger::Always | Trigger::Now => return Ok(Some(RotationTrigger::Overwrite)),
            Trigger::Schedule { rotate_ca_before } => Some(*rotate_ca_before),
            Trigger::AwayFrom(Some(_)) | Trigger::Never => None,
        };
        if self.options.adopt {
            return Ok(Some(RotationTrigger::Adopt));
        }
        let Some(before) = schedule else {
            return Ok(None);
        };
        let horizon = add(self.now, before)?;
        if let Some(ca) = cas.first().filter(|ca| ca.not_after < horizon) {
            return Ok(Some(RotationTrigger::Schedule {
                ca_not_after: ca.not_after,
            }));
        }
        if self.first_leaf_end().is_some_and(|end| end < horizon) {
            return Ok(Some(RotationTrigger::CaLimitsLeaves));
        }
        Ok(None)
    }

    /// What starts a rotation from stable, if anything: the policy of the options, read
    /// against the persisted state and the current CA.
    pub(super) fn trigger(
        &self,
        state: &RotationState,
        current: &Ca,
    ) -> Result<Option<RotationTrigger>, Error> {
        let before = match &self.options.trigger {
            Trigger::Always | Trigger::Now => return Ok(Some(RotationTrigger::Overwrite)),
            Trigger::AwayFrom(from) => {
                let asked = *from == Some(current.fingerprint());
                return Ok(asked.then_some(RotationTrigger::Request));
            }
            Trigger::Once(id) => {
                let asked = state.request.as_deref() != Some(id.as_str());
                return Ok(asked.then_some(RotationTrigger::Request));
            }
            Trigger::Never => return Ok(None),
            Trigger::Schedule { rotate_ca_before } => *rotate_ca_before,
        };
        if before >= self.profile.ca.validity {
            return Err(Error::InvalidParameter {
                field: "rotate_ca_before".into(),
                reason: format!(
                    "{} is not shorter than the CA validity ({}): every new CA would be due \
                     at once, and every run would rotate",
                    humantime::format_duration(before),
                    humantime::format_duration(self.profile.ca.validity),
                ),
            });
        }
        if current.not_after() < add(self.now, before)? {
            return Ok(Some(RotationTrigger::Schedule {
                ca_not_after: current.not_after(),
            }));
        }
        Ok(None)
    }

    /// A staged rotation waits two convergence intervals (trust, then leaves) while the
    /// current CA must stay valid. Those two waits may take at most a tenth of what is
    /// left of it (or two default intervals, whichever is longer): a typo such as `5M`
    /// (five months, for five minutes) is refused before anything is written, instead of
    /// holding the rotation, and the old CA, for most of a year.
    pub(super) fn check_interval(&self, current: &Ca) -> Result<(), Error> {
        let interval = self.options.convergence_interval;
        let left =
            std::time::Duration::try_from(current.not_after() - self.now).unwrap_or_default();
        let limit = (left / 10).max(DEFAULT_CONVERGENCE_INTERVAL.saturating_mul(2));
        if interval.saturating_mul(2) > limit {
            return Err(Error::InvalidParameter {
                field: "convergence_interval".into(),
                reason: format!(
                    "{}: a staged rotation waits twice that, more than a tenth of the {} the \
                     current CA has left",
                    humantime::format_duration(interval),
                    humantime::format_duration(std::time::Duration::from_secs(left.as_secs())),
                ),
            });
        }
        Ok(())
    }

    /// Whether the options ask for a rotation away from the CA `state` names as current
    /// (which could not be loaded).
    pub(super) fn recovery_requested(&self, state: &RotationState) -> bool {
        match &self.options.trigger {
            Trigger::AwayFrom(from) => from.is_some() && *from == state.current,
            Trigger::Once(id) => state.request.as_deref() != Some(id.as_str()),
            // `Always` (not a request) keeps refusing a state it cannot read: only an
            // explicit request, which names the CA it rotates away from, recovers.
            Trigger::Always | Trigger::Now | Trigger::Never | Trigger::Schedule { .. } => false,
        }
    }
}
