//! What a run is asked to do: the rotation policy.

use std::time::Duration;

use serde::Serialize;

use super::Strategy;
use crate::bundle::BundlePolicy;
use crate::fingerprint::Fingerprint;

/// What starts a rotation from `stable`, and adopts an install certrotate did not make.
///
/// One trigger per policy: the ways a rotation can be asked for do not overlap. Renewing
/// leaves is not a trigger (the CA stays): see [`RotationPolicy::renew_before`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Trigger {
    /// Nothing starts a rotation. A run installs what is missing, repairs drift, renews
    /// leaves ([`RotationPolicy::renew_before`]), adopts only with
    /// [`RotationPolicy::adopt`], and carries a rotation in progress to its end.
    #[default]
    Never,
    /// Rotate away from the CA that is current when the run starts (adopt an install
    /// certrotate does not manage yet). The engine resolves it once per run, with
    /// [`RotationPolicy::resolve`], into [`Self::AwayFrom`]: repeating or racing it rotates
    /// once. A single [`plan`](crate::plan()) treats it as [`Self::Always`].
    Now,
    /// Rotate away from this CA, the one current when the request was made (see
    /// [`rotation_base`](super::rotation_base)), or `None` for an install certrotate does
    /// not manage yet (adopt it). Satisfied as soon as another CA is current, so
    /// repeating, racing, or reconciling it again after a restart rotates once.
    AwayFrom(Option<Fingerprint>),
    /// A request with an identity (an operator's resource generation, a ticket): persisted
    /// in the CA Secret when its rotation starts, so the same id never rotates twice. Also
    /// adopts an install certrotate does not manage.
    Once(String),
    /// The schedule: rotate when the current CA expires within `rotate_ca_before`, or when
    /// it is what keeps a leaf from its full validity. An install certrotate does not
    /// manage is adopted when the window covers the end of its CA (or of a leaf): with no
    /// CA key, nothing else could renew them. Must be shorter than the CA's validity.
    Schedule {
        /// How long before the current CA's end a rotation starts.
        #[serde(with = "crate::duration_serde")]
        rotate_ca_before: Duration,
    },
    /// Every plan that finds the install stable starts another rotation (and adopts an
    /// unmanaged install): not idempotent. For tests, benchmarks and one-shot tools; prefer
    /// [`Self::Now`] for anything that may run twice.
    Always,
}

/// What a run is asked to do: what starts a rotation ([`Trigger`]), how a rotation
/// proceeds, and what an install certrotate did not make is to become.
///
/// **Adoption**, defined once. An install certrotate did not make has component Secrets
/// and no CA Secret (what upstream's certgen leaves: it keeps no CA key). Adopting it
/// mints a new CA and rotates to it, staged, carrying the existing `ca.crt` until the
/// leaves switched: [`Self::adopt`], or a trigger that asks for a rotation. That is not
/// trusting a CA Secret someone else put there ([`Self::trust_existing_ca`]): a CA
/// Secret that issued none of the leaves is refused by default, since whoever can create
/// Secrets in the namespace could have planted it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RotationPolicy {
    /// What starts a rotation.
    pub trigger: Trigger,
    /// Re-issue leaves that expire within this long (in `stable` only), from the current
    /// CA. Independent of the trigger: a schedule usually renews within the same window.
    #[serde(with = "crate::duration_serde::option")]
    pub renew_before: Option<Duration>,
    /// Start a rotation (or retire a carried CA at once) even if the previous rotation
    /// ended less than one convergence interval ago: the too-soon guard is for components
    /// that may not have loaded the last leaves yet.
    pub skip_too_soon: bool,
    /// Proceed past a persisted `phase-since` in the future (a clock that was, or is,
    /// skewed) instead of refusing it.
    pub accept_clock_skew: bool,
    /// How a new rotation proceeds.
    pub strategy: Strategy,
    /// How long to wait after a phase for every component to load what it wrote: the
    /// kubelet's sync period (1 min by default) plus its Secret cache TTL (1 min) plus the
    /// components' reload; the default of 5 minutes leaves more than twice that. A rotation
    /// persists the interval it started with, and every wait of it (and the too-soon guard
    /// after it) uses that one.
    #[serde(with = "crate::duration_serde")]
    pub convergence_interval: Duration,
    /// Rotate HMAC keys with this rotation (they are kept by default, so OIDC sessions
    /// survive a CA rotation).
    pub rotate_hmac: bool,
    /// Drop the old CA from the bundles after the leaves converged (for a leaked key).
    pub drop_old_ca: bool,
    /// How many old CAs a bundle carries.
    pub bundle_policy: BundlePolicy,
    /// [`Self::convergence_interval`] replaces the interval a rotation in progress was
    /// started with (persisted in the CA Secret), for this run and every later one: a
    /// mistyped interval (five months for five minutes) is otherwise kept to the end.
    pub replace_interval: bool,
    /// Use a CA Secret that issued none of the profile's leaves. A first install that finds
    /// one refuses it by default: whoever can create Secrets in the namespace could have
    /// put their own CA there before the install, and every leaf would be issued from it.
    ///
    /// Not [`Self::adopt`]: this trusts a CA Secret (certificate *and* key) someone put
    /// there; adoption is for an install with no CA Secret at all (upstream's certgen keeps
    /// no CA key), and mints a new CA.
    pub trust_existing_ca: bool,
    /// Adopt an install made without certrotate (component Secrets, no CA Secret: what
    /// upstream's certgen leaves): mint a CA and rotate to it, staged, carrying the
    /// existing `ca.crt` until the leaves switched. Idempotent, and a no-op on an install
    /// certrotate manages: unlike [`Trigger::Always`], it never rotates a managed CA. A
    /// [`Trigger::Schedule`] whose window covers the end of the existing
    /// CA (or of a leaf it issued) adopts too, without it.
    pub adopt: bool,
    /// How long after a rotation ended the previous CA (and whatever else the bundles
    /// carry besides the current CA) is retired from every `ca.crt` and webhook
    /// `caBundle`, staged (phase `retire`, then one convergence interval). Persisted with
    /// the rotation when it starts, like the convergence interval; a rotation keeps the
    /// value it started with, and [`Self::drop_old_ca`] retires at once instead.
    ///
    /// The default, [`DEFAULT_RETIRE_AFTER`] (7 days), is long enough for every component
    /// to have reloaded its new leaf many times over (a rotation ends one convergence
    /// interval after the leaves changed, and its rollouts finished) and for a pod that
    /// was down for days (a node lost over a weekend, a change freeze) to come back with
    /// the new leaf while the old trust is still there. It lands well before the old CA
    /// nears its end: a schedule rotates at least `rotate_ca_before` (90 days in the
    /// shipped CronJob) before it, so the old CA is retired with 83 days or more left,
    /// far outside `check --warn-within` (30 days) and the shipped 14-day alert. Whatever
    /// the value, retirement is never later than [`RETIRE_BEFORE_EXPIRY`] before the old
    /// CA's end, nor sooner than one convergence interval after the rotation ended.
    #[serde(with = "crate::duration_serde")]
    pub retire_after: Duration,
    /// Where servers are probed ([`Observed::evidence`](super::Observed::evidence)): how
    /// long a phase may wait, from its start, for every endpoint to show what it wrote.
    /// Past it the plan fails with [`Error::ConvergenceTimeout`](crate::Error::ConvergenceTimeout)
    /// and the phase stays where it is. `None`: wait as long as it takes.
    pub convergence_timeout: Option<Duration>,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        Self {
            trigger: Trigger::Never,
            renew_before: None,
            skip_too_soon: false,
            accept_clock_skew: false,
            strategy: Strategy::Staged,
            convergence_interval: DEFAULT_CONVERGENCE_INTERVAL,
            rotate_hmac: false,
            drop_old_ca: false,
            bundle_policy: BundlePolicy::default(),
            replace_interval: false,
            trust_existing_ca: false,
            adopt: false,
            retire_after: DEFAULT_RETIRE_AFTER,
            convergence_timeout: None,
        }
    }
}

impl RotationPolicy {
    /// With [`Self::trigger`].
    pub fn with_trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }

    /// With [`Self::skip_too_soon`] and [`Self::accept_clock_skew`]: what `--force` asks.
    pub fn with_force(mut self, force: bool) -> Self {
        self.skip_too_soon = force;
        self.accept_clock_skew = force;
        self
    }

    /// With [`Self::strategy`].
    pub fn with_strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// With [`Self::convergence_interval`].
    pub fn with_convergence_interval(mut self, interval: Duration) -> Self {
        self.convergence_interval = interval;
        self
    }

    /// With [`Self::renew_before`].
    pub fn with_renew_before(mut self, before: Option<Duration>) -> Self {
        self.renew_before = before;
        self
    }

    /// With [`Self::rotate_hmac`].
    pub fn with_rotate_hmac(mut self, rotate: bool) -> Self {
        self.rotate_hmac = rotate;
        self
    }

    /// With [`Self::drop_old_ca`].
    pub fn with_drop_old_ca(mut self, drop: bool) -> Self {
        self.drop_old_ca = drop;
        self
    }

    /// With [`Self::replace_interval`].
    pub fn with_replace_interval(mut self, replace: bool) -> Self {
        self.replace_interval = replace;
        self
    }

    /// With [`Self::trust_existing_ca`].
    pub fn with_trust_existing_ca(mut self, trust: bool) -> Self {
        self.trust_existing_ca = trust;
        self
    }

    /// With [`Self::adopt`].
    pub fn with_adopt(mut self, adopt: bool) -> Self {
        self.adopt = adopt;
        self
    }

    /// With [`Self::retire_after`].
    pub fn with_retire_after(mut self, after: Duration) -> Self {
        self.retire_after = after;
        self
    }

    /// With [`Self::bundle_policy`].
    pub fn with_bundle_policy(mut self, policy: BundlePolicy) -> Self {
        self.bundle_policy = policy;
        self
    }
}

/// The default convergence interval; see [`RotationPolicy::convergence_interval`].
pub const DEFAULT_CONVERGENCE_INTERVAL: Duration = Duration::from_secs(300);

/// The default of [`RotationPolicy::retire_after`]: 7 days (see there why).
pub const DEFAULT_RETIRE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// The latest a carried CA is retired before its end, whatever
/// [`RotationPolicy::retire_after`] says: 30 days, the default warning window of
/// `certrotate check` (`--warn-within`), so that a CA nothing needs is gone from the
/// bundles before any check would warn about it.
pub const RETIRE_BEFORE_EXPIRY: Duration = Duration::from_secs(30 * 24 * 3600);

impl RotationPolicy {
    /// This policy with [`Trigger::Now`] resolved against `observed` (the first
    /// observation of a run): [`Trigger::AwayFrom`] the CA current then, or `None` for an
    /// install certrotate does not manage. Any other trigger is returned as it is. The
    /// engine calls it once per run, so the rounds of a run (and a run that races another)
    /// rotate once.
    ///
    /// # Errors
    ///
    /// When the CA Secret's state cannot be read (see [`rotation_base`](super::rotation_base)).
    pub fn resolve(
        &self,
        profile: &crate::Profile,
        observed: &super::Observed,
    ) -> Result<Self, crate::Error> {
        let mut resolved = self.clone();
        if self.trigger == Trigger::Now {
            resolved.trigger = Trigger::AwayFrom(super::rotation_base(profile, observed)?);
        }
        Ok(resolved)
    }
}
