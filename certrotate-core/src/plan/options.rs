//! What a run is asked to do.

use std::time::Duration;

use serde::Serialize;

use super::Strategy;
use crate::bundle::BundlePolicy;
use crate::fingerprint::Fingerprint;

/// An explicit request to rotate the CA, idempotent: repeating it, racing it, or
/// reconciling it again after a restart rotates once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum RotationRequest {
    /// Rotate away from this CA: the one current when the request was made (see
    /// [`rotation_base`](super::rotation_base)), or `None` for an install certrotate does
    /// not manage yet (adopt it). Satisfied as soon as another CA is current.
    AwayFrom(Option<Fingerprint>),
    /// A request with an identity (an operator's resource generation, a ticket): persisted
    /// in the CA Secret when its rotation starts, so the same id never rotates twice.
    Id(String),
}

/// What a run is asked to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PlanOptions {
    /// Rotate the CA whenever the plan finds it stable (and adopt an install made without
    /// certrotate): not idempotent, every stable plan starts another rotation. Prefer
    /// [`Self::request`] (what `certrotate rotate --overwrite` sends) or
    /// [`Self::rotate_ca_before`] for anything that runs more than once.
    pub overwrite: bool,
    /// Start a rotation even if the previous one ended less than one convergence interval
    /// ago, and proceed past a `phase-since` in the future (a skewed clock).
    pub force: bool,
    /// How a new rotation proceeds.
    pub strategy: Strategy,
    /// How long to wait after a phase for every component to load what it wrote: the
    /// kubelet's sync period (1 min by default) plus its Secret cache TTL (1 min) plus the
    /// components' reload; the default of 5 minutes leaves more than twice that. A rotation
    /// persists the interval it started with, and every wait of it (and the too-soon guard
    /// after it) uses that one.
    #[serde(with = "crate::duration_serde")]
    pub convergence_interval: Duration,
    /// Re-issue leaves that expire within this long (in `stable` only).
    pub renew_before: Option<Duration>,
    /// Rotate HMAC keys with this rotation (they are kept by default, so OIDC sessions
    /// survive a CA rotation).
    pub rotate_hmac: bool,
    /// Drop the old CA from the bundles after the leaves converged (for a leaked key).
    pub drop_old_ca: bool,
    /// How many old CAs a bundle carries.
    pub bundle_policy: BundlePolicy,
    /// An explicit, idempotent request to rotate the CA (and to adopt an install made
    /// without certrotate).
    pub request: Option<RotationRequest>,
    /// The schedule: start a rotation when the current CA expires within this long, or
    /// when it is what keeps a leaf from its full validity. Otherwise leaves are renewed.
    #[serde(with = "crate::duration_serde::option")]
    pub rotate_ca_before: Option<Duration>,
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
    /// certrotate manages: unlike [`Self::overwrite`], it never rotates a managed CA. A
    /// schedule ([`Self::rotate_ca_before`]) whose window covers the end of the existing
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

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            overwrite: false,
            force: false,
            strategy: Strategy::Staged,
            convergence_interval: DEFAULT_CONVERGENCE_INTERVAL,
            renew_before: None,
            rotate_hmac: false,
            drop_old_ca: false,
            bundle_policy: BundlePolicy::default(),
            request: None,
            rotate_ca_before: None,
            replace_interval: false,
            trust_existing_ca: false,
            adopt: false,
            retire_after: DEFAULT_RETIRE_AFTER,
            convergence_timeout: None,
        }
    }
}

impl PlanOptions {
    /// With [`Self::overwrite`].
    pub fn with_overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// With [`Self::force`].
    pub fn with_force(mut self, force: bool) -> Self {
        self.force = force;
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

    /// With [`Self::request`].
    pub fn with_request(mut self, request: Option<RotationRequest>) -> Self {
        self.request = request;
        self
    }

    /// With [`Self::rotate_ca_before`].
    pub fn with_rotate_ca_before(mut self, before: Option<Duration>) -> Self {
        self.rotate_ca_before = before;
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

/// The default convergence interval; see [`PlanOptions::convergence_interval`].
pub const DEFAULT_CONVERGENCE_INTERVAL: Duration = Duration::from_secs(300);

/// The default of [`PlanOptions::retire_after`]: 7 days (see there why).
pub const DEFAULT_RETIRE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// The latest a carried CA is retired before its end, whatever
/// [`PlanOptions::retire_after`] says: 30 days, the default warning window of
/// `certrotate check` (`--warn-within`), so that a CA nothing needs is gone from the
/// bundles before any check would warn about it.
pub const RETIRE_BEFORE_EXPIRY: Duration = Duration::from_secs(30 * 24 * 3600);
