//! The rotation protocol as a pure state machine: observed state in, [`RotationPlan`] out.
//!
//! The phases (`stable → prepared → trust → leaves → [retire →] stable`) are persisted in
//! annotations of the profile's CA Secret, beside the CA (and, mid-rotation, the next CA).
//! Each call of [`plan`] looks at what is there and returns the next step: the Secret writes
//! (each with the version it expects to replace), webhook `caBundle` changes and workload
//! restarts, in the order they must be applied, and what comes after. Writes to the CA
//! Secret that advance the phase always come last, so a crash between any two writes
//! leaves the persisted phase behind the data and a rerun repeats an idempotent step with
//! the same next CA.
//!
//! Invariant at every point: every component's leaf chains to a CA that every peer's
//! `ca.crt` and every webhook `caBundle` contain. The staged strategy keeps it because trust
//! is added (and converges) before any leaf changes, and removed only after every leaf
//! changed and converged.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::bundle::BundlePolicy;
use crate::error::{Error, Origin};
use crate::fingerprint::Fingerprint;
use crate::generate::{Ca, Entropy, HmacKey};
use crate::inspect::{self, ChainVerdict};
use crate::pem_blocks;
use crate::profile::{ComponentSpec, Profile, WebhookKind, WorkloadKind};

/// Annotation on the CA Secret: the rotation phase.
pub const ANNOTATION_PHASE: &str = "certrotate.io/phase";
/// Annotation on the CA Secret: when the phase began (RFC 3339).
pub const ANNOTATION_SINCE: &str = "certrotate.io/phase-since";
/// Annotation on the CA Secret: fingerprint of the current CA.
pub const ANNOTATION_CURRENT: &str = "certrotate.io/current-ca";
/// Annotation on the CA Secret: fingerprint of the next CA, mid-rotation.
pub const ANNOTATION_NEXT: &str = "certrotate.io/next-ca";
/// Annotation on the CA Secret: fingerprint of the CA before the current one.
pub const ANNOTATION_PREVIOUS: &str = "certrotate.io/previous-ca";
/// Annotation on the CA Secret: the strategy of the rotation in progress.
pub const ANNOTATION_STRATEGY: &str = "certrotate.io/strategy";
/// Annotation on the CA Secret: whether the rotation drops the old CA at the end.
pub const ANNOTATION_DROP_OLD_CA: &str = "certrotate.io/drop-old-ca";
/// Annotation on the CA Secret: whether the rotation also rotates the HMAC keys.
pub const ANNOTATION_ROTATE_HMAC: &str = "certrotate.io/rotate-hmac";
/// Annotation on an HMAC Secret: the rotation (next CA fingerprint) that last rotated it.
pub const ANNOTATION_HMAC_ROTATION: &str = "certrotate.io/hmac-rotation";
/// Pod-template annotation `kubectl rollout restart` sets.
pub const ANNOTATION_RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// Pod-template annotation: the state of the mounted Secrets the pods were restarted for,
/// so that a rerun does not restart them again.
pub const ANNOTATION_RESTARTED_FOR: &str = "certrotate.io/restarted-for";

/// Data key of the CA Secret: current CA certificate.
pub const KEY_CA_CRT: &str = "ca.crt";
/// Data key of the CA Secret: current CA private key.
pub const KEY_CA_KEY: &str = "ca.key";
/// Data key of the CA Secret: next CA certificate, mid-rotation.
pub const KEY_NEXT_CA_CRT: &str = "next-ca.crt";
/// Data key of the CA Secret: next CA private key, mid-rotation.
pub const KEY_NEXT_CA_KEY: &str = "next-ca.key";
/// Data key of a component Secret: the trust bundle.
pub const KEY_TRUST: &str = "ca.crt";
/// Data key of a component Secret: the leaf certificate.
pub const KEY_TLS_CRT: &str = "tls.crt";
/// Data key of a component Secret: the leaf private key.
pub const KEY_TLS_KEY: &str = "tls.key";

/// The most bytes of one Secret value that are parsed.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// The phase of a rotation, persisted on the CA Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Phase {
    /// No rotation in progress.
    Stable,
    /// The next CA is minted and persisted; nothing else changed yet.
    Prepared,
    /// Every bundle trusts both CAs; leaves unchanged.
    Trust,
    /// Every leaf is issued by the new CA; bundles still trust both.
    Leaves,
    /// The old CA is dropped from the bundles.
    Retire,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Self::Stable => "stable",
            Self::Prepared => "prepared",
            Self::Trust => "trust",
            Self::Leaves => "leaves",
            Self::Retire => "retire",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Phase {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::Stable,
            Self::Prepared,
            Self::Trust,
            Self::Leaves,
            Self::Retire,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| format!("unknown phase {s:?}"))
    }
}

/// How a CA rotation proceeds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Strategy {
    /// Trust first, wait, then leaves, wait (then optionally drop the old CA): no failed
    /// handshake whatever order components reload in.
    #[default]
    Staged,
    /// Upstream's behaviour: each Secret's bundle and new leaf in one write, then restarts.
    /// Correct only if every component reloads at the same instant.
    SingleStep,
}

impl Strategy {
    fn as_str(self) -> &'static str {
        match self {
            Self::Staged => "staged",
            Self::SingleStep => "single-step",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "staged" => Ok(Self::Staged),
            "single-step" => Ok(Self::SingleStep),
            other => Err(Error::InvalidParameter {
                field: "strategy".into(),
                reason: format!("{other:?} is not one of staged, single-step"),
            }),
        }
    }
}

/// What a run is asked to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PlanOptions {
    /// Rotate the CA (and adopt an install made without certrotate). Without it, only
    /// missing Secrets are created (and leaves renewed, with `renew_before`).
    pub overwrite: bool,
    /// Start a rotation even if the previous one ended less than one convergence interval
    /// ago.
    pub force: bool,
    /// How a new rotation proceeds.
    pub strategy: Strategy,
    /// How long to wait after a phase for every component to load what it wrote: the
    /// kubelet's sync period (1 min by default) plus its Secret cache TTL (1 min) plus the
    /// components' reload; the default of 5 minutes leaves more than twice that.
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
        }
    }
}

/// The default convergence interval; see [`PlanOptions::convergence_interval`].
pub const DEFAULT_CONVERGENCE_INTERVAL: Duration = Duration::from_secs(300);

/// A namespaced object's name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A workload of a profile.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct WorkloadRef {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Namespace and name.
    pub object: ObjectRef,
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.object)
    }
}

/// A webhook configuration of a profile.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct WebhookRef {
    /// Its kind.
    pub kind: WebhookKind,
    /// Its (cluster-scoped) name.
    pub name: String,
}

impl fmt::Display for WebhookRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            WebhookKind::Mutating => "mutatingwebhookconfiguration",
            WebhookKind::Validating => "validatingwebhookconfiguration",
        };
        write!(f, "{kind} {}", self.name)
    }
}

/// A Secret as read from a store. `Debug` shows the data keys, never the values.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObservedSecret {
    /// The Secret's type.
    pub secret_type: String,
    /// Its data.
    pub data: BTreeMap<String, Vec<u8>>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// Its version (`resourceVersion`, or what stands in for it).
    pub version: String,
}

impl ObservedSecret {
    /// A Secret with the given type, data and version, without labels or annotations.
    pub fn new(
        secret_type: impl Into<String>,
        data: BTreeMap<String, Vec<u8>>,
        version: impl Into<String>,
    ) -> Self {
        Self {
            secret_type: secret_type.into(),
            data,
            version: version.into(),
            ..Self::default()
        }
    }
}

impl fmt::Debug for ObservedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObservedSecret")
            .field("secret_type", &self.secret_type)
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .field("labels", &self.labels)
            .field("annotations", &self.annotations)
            .field("version", &self.version)
            .finish()
    }
}

/// A workload as read from a store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObservedWorkload {
    /// Its pod template's annotations.
    pub template_annotations: BTreeMap<String, String>,
    /// Whether its latest rollout finished (all replicas updated and available).
    pub rollout_complete: bool,
}

impl ObservedWorkload {
    /// A workload with the given pod-template annotations and rollout status.
    pub fn new(template_annotations: BTreeMap<String, String>, rollout_complete: bool) -> Self {
        Self {
            template_annotations,
            rollout_complete,
        }
    }
}

/// A webhook configuration as read from a store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObservedWebhook {
    /// The `caBundle` of each of its webhooks, in order (empty if unset).
    pub ca_bundles: Vec<Vec<u8>>,
    /// Its version.
    pub version: String,
}

impl ObservedWebhook {
    /// A webhook configuration with the given bundles and version.
    pub fn new(ca_bundles: Vec<Vec<u8>>, version: impl Into<String>) -> Self {
        Self {
            ca_bundles,
            version: version.into(),
        }
    }
}

/// Everything a plan depends on, as read from a store. Objects of the profile that do not
/// exist are absent from the maps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Observed {
    /// Secrets by name.
    pub secrets: BTreeMap<ObjectRef, ObservedSecret>,
    /// Workloads by name.
    pub workloads: BTreeMap<WorkloadRef, ObservedWorkload>,
    /// Webhook configurations by name.
    pub webhooks: BTreeMap<WebhookRef, ObservedWebhook>,
}

/// The objects a profile touches, i.e. what the engine must observe.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProfileObjects {
    /// The CA Secret.
    pub ca_secret: ObjectRef,
    /// Component Secrets, in profile order.
    pub components: Vec<ObjectRef>,
    /// HMAC Secrets, in profile order.
    pub hmac: Vec<ObjectRef>,
    /// Workloads to restart.
    pub workloads: Vec<WorkloadRef>,
    /// Webhook configurations.
    pub webhooks: Vec<WebhookRef>,
}

impl ProfileObjects {
    /// The objects of `profile`.
    pub fn of(profile: &Profile) -> Self {
        let obj = |name: &str| ObjectRef::new(&profile.namespace, name);
        Self {
            ca_secret: obj(&profile.ca.secret),
            components: profile.components.iter().map(|c| obj(&c.secret)).collect(),
            hmac: profile.hmac.iter().map(|h| obj(&h.secret)).collect(),
            workloads: profile
                .workloads
                .iter()
                .map(|w| WorkloadRef {
                    kind: w.kind,
                    object: obj(&w.name),
                })
                .collect(),
            webhooks: profile
                .webhooks
                .iter()
                .map(|w| WebhookRef {
                    kind: w.kind,
                    name: profile.render(&w.name),
                })
                .collect(),
        }
    }

    /// Every Secret: CA, components, HMAC.
    pub fn secrets(&self) -> impl Iterator<Item = &ObjectRef> {
        std::iter::once(&self.ca_secret)
            .chain(&self.components)
            .chain(&self.hmac)
    }
}

/// A value to write into a Secret. Private values serialise as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretValue {
    /// Public material (certificates, bundles).
    Public(Vec<u8>),
    /// Private material (keys, HMAC secrets), zeroized on drop.
    Private(Zeroizing<Vec<u8>>),
}

impl SecretValue {
    /// The bytes to write.
    pub fn expose_secret(&self) -> &[u8] {
        match self {
            Self::Public(v) => v,
            Self::Private(v) => v,
        }
    }

    fn private(bytes: &[u8]) -> Self {
        Self::Private(Zeroizing::new(bytes.to_vec()))
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Public(v) => write!(f, "Public({} bytes)", v.len()),
            Self::Private(_) => f.write_str("Private(<redacted>)"),
        }
    }
}

impl Serialize for SecretValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Public(v) => s.serialize_str(&String::from_utf8_lossy(v)),
            Self::Private(_) => s.serialize_str("<redacted>"),
        }
    }
}

/// What to do with a Secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SecretAction {
    /// Create it; fails if it exists.
    Create,
    /// Update the listed keys, labels and annotations, if it is still at `expected_version`.
    Update {
        /// The version read when planning.
        expected_version: String,
    },
    /// Leave it as it is.
    Unchanged,
}

/// One Secret's part of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SecretChange {
    /// The Secret.
    pub secret: ObjectRef,
    /// What to do.
    pub action: SecretAction,
    /// Its type (for a create).
    pub secret_type: String,
    /// Keys to set (`Some`) or remove (`None`); other keys are kept.
    pub data: BTreeMap<String, Option<SecretValue>>,
    /// Labels to set; others are kept.
    pub labels: BTreeMap<String, String>,
    /// Annotations to set (`Some`) or remove (`None`); others are kept.
    pub annotations: BTreeMap<String, Option<String>>,
    /// Why.
    pub reason: String,
}

/// A change of every `caBundle` of a webhook configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WebhookChange {
    /// The configuration.
    pub webhook: WebhookRef,
    /// The version read when planning.
    pub expected_version: String,
    /// The new `caBundle` of each webhook, in order.
    #[serde(serialize_with = "serialize_pems")]
    pub ca_bundles: Vec<Vec<u8>>,
    /// Why.
    pub reason: String,
}

fn serialize_pems<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|b| String::from_utf8_lossy(b)))
}

/// A rolling restart of a workload, as `kubectl rollout restart` does it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Restart {
    /// The workload.
    pub workload: WorkloadRef,
    /// The value of `kubectl.kubernetes.io/restartedAt` (RFC 3339, UTC, seconds).
    pub restarted_at: String,
    /// The value of `certrotate.io/restarted-for`.
    pub token: String,
    /// Why.
    pub reason: String,
}

/// One step of a plan, applied in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Step {
    /// Create, update or leave a Secret.
    Secret(SecretChange),
    /// Change the `caBundle`s of a webhook configuration.
    Webhook(WebhookChange),
    /// Restart a workload.
    Restart(Restart),
    /// Something that needs no write but is worth saying (an absent workload, say).
    Note {
        /// The object.
        object: String,
        /// What about it.
        message: String,
    },
}

/// What comes after the steps of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Next {
    /// Plan again at once: the next step is allowed now.
    Continue,
    /// The next step is allowed at `at`.
    WaitUntil {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        /// Why.
        reason: String,
    },
    /// The next step waits for these workloads' rollouts to finish.
    WaitForRollout {
        /// The workloads.
        workloads: Vec<String>,
    },
    /// Nothing more to do.
    Done,
}

/// The next step of a rotation, as a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RotationPlan {
    /// The persisted phase when planning.
    pub from: Phase,
    /// The phase once the steps are applied.
    pub to: Phase,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// What comes after.
    pub next: Next,
    /// One line for humans.
    pub summary: String,
}

impl RotationPlan {
    /// Whether applying the plan writes anything.
    pub fn writes(&self) -> bool {
        self.steps.iter().any(|s| match s {
            Step::Secret(c) => c.action != SecretAction::Unchanged,
            Step::Webhook(_) | Step::Restart(_) => true,
            Step::Note { .. } => false,
        })
    }
}

/// The rotation state persisted on the CA Secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RotationState {
    /// The phase.
    pub phase: Phase,
    /// When it began.
    #[serde(with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// The current CA.
    pub current: Option<Fingerprint>,
    /// The next CA, mid-rotation.
    pub next: Option<Fingerprint>,
    /// The CA before the current one.
    pub previous: Option<Fingerprint>,
    /// The strategy of the rotation in progress.
    pub strategy: Strategy,
    /// Whether the rotation drops the old CA.
    pub drop_old_ca: bool,
    /// Whether the rotation rotates HMAC keys.
    pub rotate_hmac: bool,
}

impl RotationState {
    /// Reads the state from a CA Secret's annotations.
    pub fn from_secret(secret: &ObservedSecret, origin: &Origin) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidRotationState {
            origin: origin.clone(),
            reason,
        };
        let a = &secret.annotations;
        let fp = |key: &str| -> Result<Option<Fingerprint>, Error> {
            a.get(key)
                .filter(|v| !v.is_empty())
                .map(|v| v.parse().map_err(|e: Error| invalid(format!("{key}: {e}"))))
                .transpose()
        };
        let phase = match a.get(ANNOTATION_PHASE) {
            Some(p) => p
                .parse()
                .map_err(|e: String| invalid(format!("{ANNOTATION_PHASE}: {e}")))?,
            None => Phase::Stable,
        };
        let since = a
            .get(ANNOTATION_SINCE)
            .map(|s| {
                OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| invalid(format!("{ANNOTATION_SINCE}: {s:?}: {e}")))
            })
            .transpose()?;
        let strategy = match a.get(ANNOTATION_STRATEGY) {
            Some(s) => s.parse().map_err(|e: Error| invalid(e.to_string()))?,
            None => Strategy::Staged,
        };
        let state = Self {
            phase,
            since,
            current: fp(ANNOTATION_CURRENT)?,
            next: fp(ANNOTATION_NEXT)?,
            previous: fp(ANNOTATION_PREVIOUS)?,
            strategy,
            drop_old_ca: a.get(ANNOTATION_DROP_OLD_CA).is_some_and(|v| v == "true"),
            rotate_hmac: a.get(ANNOTATION_ROTATE_HMAC).is_some_and(|v| v == "true"),
        };
        if matches!(phase, Phase::Prepared | Phase::Trust) && state.next.is_none() {
            return Err(invalid(format!("phase {phase} without {ANNOTATION_NEXT}")));
        }
        Ok(state)
    }

    /// The annotations that persist this state (`None` removes one).
    pub fn annotations(&self) -> BTreeMap<String, Option<String>> {
        let fp = |f: Option<Fingerprint>| f.map(|f| f.to_string());
        let flag = |b: bool| b.then(|| "true".to_owned());
        BTreeMap::from([
            (ANNOTATION_PHASE.into(), Some(self.phase.to_string())),
            (ANNOTATION_SINCE.into(), self.since.map(crate::rfc3339)),
            (ANNOTATION_CURRENT.into(), fp(self.current)),
            (ANNOTATION_NEXT.into(), fp(self.next)),
            (ANNOTATION_PREVIOUS.into(), fp(self.previous)),
            (
                ANNOTATION_STRATEGY.into(),
                (self.phase != Phase::Stable).then(|| self.strategy.to_string()),
            ),
            (ANNOTATION_DROP_OLD_CA.into(), flag(self.drop_old_ca)),
            (ANNOTATION_ROTATE_HMAC.into(), flag(self.rotate_hmac)),
        ])
    }
}

/// Plans the next step of the rotation of `profile`, given what was `observed`.
///
/// Pure: no I/O, no clock, no global randomness; new keys and serials come from `entropy`.
pub fn plan(
    profile: &Profile,
    observed: &Observed,
    options: &PlanOptions,
    now: OffsetDateTime,
    entropy: &mut dyn Entropy,
) -> Result<RotationPlan, Error> {
    let mut planner = Planner {
        profile,
        objects: ProfileObjects::of(profile),
        observed,
        options,
        now,
        entropy,
        steps: Vec::new(),
    };
    planner.run()
}

struct Planner<'a> {
    profile: &'a Profile,
    objects: ProfileObjects,
    observed: &'a Observed,
    options: &'a PlanOptions,
    now: OffsetDateTime,
    entropy: &'a mut dyn Entropy,
    steps: Vec<Step>,
}

/// The CAs a step works with, loaded from the CA Secret.
struct Cas {
    current: Option<Ca>,
    next: Option<Ca>,
}

/// What a component Secret should look like after a step.
struct Target<'c> {
    /// The new trust bundle, or `None` to keep it.
    trust: Option<Vec<u8>>,
    /// Issue a new leaf from this CA unless the present one is already issued by it.
    leaf_from: Option<&'c Ca>,
}

impl Planner<'_> {
    fn run(&mut self) -> Result<RotationPlan, Error> {
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
    fn unmanaged(&mut self) -> Result<RotationPlan, Error> {
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

    fn stable(
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
    fn enter_trust(
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
    fn enter_leaves(
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
    fn after_leaves(
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

    fn after_retire(
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
    fn single_step(
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

    // ---- helpers ----------------------------------------------------------------------

    fn finish(&mut self, from: Phase, to: Phase, next: Next, summary: String) -> RotationPlan {
        RotationPlan {
            from,
            to,
            steps: std::mem::take(&mut self.steps),
            next,
            summary,
        }
    }

    fn writes_secrets(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s, Step::Secret(c) if c.action != SecretAction::Unchanged))
    }

    fn started_state(
        &self,
        current: Option<&Ca>,
        previous: Option<Fingerprint>,
        next: &Ca,
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
        }
    }

    fn promoted_state(&self, state: &RotationState, phase: Phase) -> RotationState {
        RotationState {
            phase,
            since: Some(self.now),
            current: state.next,
            next: None,
            previous: state.current,
            ..state.clone()
        }
    }

    fn wait_for_convergence(&self, state: &RotationState) -> Result<Option<Next>, Error> {
        let since = state.since.unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let at = add(since, self.options.convergence_interval)?;
        if at > self.now {
            return Ok(Some(Next::WaitUntil {
                at,
                reason: format!("the {} phase must converge", state.phase),
            }));
        }
        let rolling: Vec<String> = self
            .objects
            .workloads
            .iter()
            .filter(|w| {
                self.observed
                    .workloads
                    .get(*w)
                    .is_some_and(|o| !o.rollout_complete)
            })
            .map(ToString::to_string)
            .collect();
        if !rolling.is_empty() {
            return Ok(Some(Next::WaitForRollout { workloads: rolling }));
        }
        Ok(None)
    }

    fn load_cas(
        &self,
        secret: &ObservedSecret,
        state: &RotationState,
        origin: &Origin,
    ) -> Result<Cas, Error> {
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
                if let Some(expect) = expect.filter(|e| *e != ca.fingerprint()) {
                    return Err(Error::InvalidRotationState {
                        origin: origin.clone(),
                        reason: format!(
                            "{crt} has fingerprint {} but the annotations say {}",
                            ca.fingerprint(),
                            expect
                        ),
                    });
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

    fn next_ca<'c>(&self, cas: &'c Cas) -> Result<&'c Ca, Error> {
        cas.next
            .as_ref()
            .ok_or_else(|| Error::InvalidRotationState {
                origin: Origin::new(format!("secret {}", self.objects.ca_secret)),
                reason: format!("mid-rotation without {KEY_NEXT_CA_CRT} and {KEY_NEXT_CA_KEY}"),
            })
    }

    /// A Secret's current `ca.crt`, or the current CA for a Secret that has none.
    fn existing_trust(&self, secret: &ObjectRef, cas: &Cas) -> Vec<u8> {
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

    fn bundle(&self, new: &Ca, old: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(self
            .options
            .bundle_policy
            .bundle(new.cert_pem().as_bytes(), old, self.now)?
            .pem
            .into_bytes())
    }

    fn needs_renewal(&self, s: &ObservedSecret, secret: &ObjectRef) -> Result<bool, Error> {
        let Some(before) = self.options.renew_before else {
            return Ok(false);
        };
        let Some(crt) = s.data.get(KEY_TLS_CRT) else {
            return Ok(true);
        };
        let origin = Origin::new(format!("secret {secret} key {KEY_TLS_CRT}"));
        let ders = pem_blocks::certificates(crt, &origin)?;
        let leaf = inspect::parse(&ders[0], &origin, 1)?;
        let not_after = leaf.validity().not_after.to_datetime();
        Ok(not_after < add(self.now, before)?)
    }

    fn component(
        &mut self,
        c: &ComponentSpec,
        target: &Target<'_>,
        reason: String,
    ) -> Result<(), Error> {
        self.component_forced(c, target, false, reason)
    }

    /// Plans one component Secret. With `force_leaf`, `leaf_from` issues a new leaf even if
    /// the present one is already issued by that CA (renewal).
    fn component_forced(
        &mut self,
        c: &ComponentSpec,
        target: &Target<'_>,
        force_leaf: bool,
        reason: String,
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

    /// Creates missing HMAC Secrets; with `rotation`, rotates them once for that rotation.
    fn hmac(&mut self, rotation: Option<Fingerprint>) -> Result<(), Error> {
        for h in &self.profile.hmac {
            let secret = ObjectRef::new(&self.profile.namespace, &h.secret);
            let existing = self.observed.secrets.get(&secret);
            let mut data = BTreeMap::new();
            let mut annotations = BTreeMap::new();
            let rotate = match (existing, rotation) {
                (None, _) => true,
                (Some(s), Some(fp)) => {
                    s.annotations.get(ANNOTATION_HMAC_ROTATION) != Some(&fp.to_string())
                }
                (Some(s), None) => !s.data.contains_key(&h.key),
            };
            if rotate {
                let key = HmacKey::generate(h.length, self.entropy)?;
                data.insert(
                    h.key.clone(),
                    Some(SecretValue::private(key.expose_secret())),
                );
                if let Some(fp) = rotation {
                    annotations.insert(ANNOTATION_HMAC_ROTATION.to_owned(), Some(fp.to_string()));
                }
            }
            let reason = match (existing, rotation) {
                (None, _) => "missing: created",
                (Some(_), Some(_)) => "HMAC rotation asked for",
                (Some(_), None) => "HMAC key missing",
            };
            let change =
                self.secret_change(secret, existing, "Opaque", data, annotations, reason.into());
            self.steps.push(Step::Secret(change));
        }
        Ok(())
    }

    fn secret_change(
        &self,
        secret: ObjectRef,
        existing: Option<&ObservedSecret>,
        secret_type: &str,
        data: BTreeMap<String, Option<SecretValue>>,
        annotations: BTreeMap<String, Option<String>>,
        reason: String,
    ) -> SecretChange {
        let labels: BTreeMap<String, String> = match existing {
            None => self.profile.labels.clone(),
            Some(s) => self
                .profile
                .labels
                .iter()
                .filter(|(k, v)| s.labels.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
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
            Some(s) if data.is_empty() && labels.is_empty() && annotations.is_empty() => {
                let _ = s;
                (
                    SecretAction::Unchanged,
                    "already in the target state".to_owned(),
                )
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
    fn write_ca_secret(
        &mut self,
        existing: Option<&ObservedSecret>,
        state: &RotationState,
        promote: Option<&Ca>,
        next: Option<&Ca>,
        reason: String,
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

    fn webhooks(
        &mut self,
        mut bundle: impl FnMut(&Self, &[u8]) -> Result<Vec<u8>, Error>,
        reason: &str,
    ) -> Result<(), Error> {
        for webhook in self.objects.webhooks.clone() {
            let Some(observed) = self.observed.webhooks.get(&webhook) else {
                self.steps.push(Step::Note {
                    object: webhook.to_string(),
                    message: "absent: no caBundle to update".into(),
                });
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
                    reason: reason.to_owned(),
                }));
            }
        }
        Ok(())
    }

    /// Restarts the start-only workloads whose pods have not yet been restarted for the
    /// component Secrets as they will be after this plan. With `changed` false (nothing of
    /// theirs changed in this run), only workloads certrotate restarted before are checked.
    fn restarts(&mut self, reason: &str, changed: bool) -> Result<(), Error> {
        let token = self.mounted_state_token();
        let restarted_at = crate::rfc3339(self.now.replace_nanosecond(0).unwrap_or(self.now));
        for workload in self.objects.workloads.clone() {
            let Some(observed) = self.observed.workloads.get(&workload) else {
                if changed {
                    self.steps.push(Step::Note {
                        object: workload.to_string(),
                        message: "absent: nothing to restart".into(),
                    });
                }
                continue;
            };
            let previous = observed.template_annotations.get(ANNOTATION_RESTARTED_FOR);
            if previous == Some(&token) {
                self.steps.push(Step::Note {
                    object: workload.to_string(),
                    message: "already restarted for this state".into(),
                });
                continue;
            }
            if !changed && previous.is_none() {
                continue;
            }
            self.steps.push(Step::Restart(Restart {
                workload,
                restarted_at: restarted_at.clone(),
                token: token.clone(),
                reason: reason.to_owned(),
            }));
        }
        Ok(())
    }

    /// A digest of every component's `ca.crt` and `tls.crt` as they will be after the
    /// steps planned so far: the state start-only workloads must be restarted into.
    fn mounted_state_token(&self) -> String {
        let mut input = Vec::new();
        for secret in &self.objects.components {
            let planned = self.steps.iter().rev().find_map(|s| match s {
                Step::Secret(c) if &c.secret == secret => Some(c),
                _ => None,
            });
            let observed = self.observed.secrets.get(secret);
            for key in [KEY_TRUST, KEY_TLS_CRT] {
                let value = planned
                    .and_then(|c| c.data.get(key))
                    .map(|v| {
                        v.as_ref()
                            .map(SecretValue::expose_secret)
                            .unwrap_or_default()
                    })
                    .or_else(|| observed.and_then(|s| s.data.get(key)).map(Vec::as_slice))
                    .unwrap_or_default();
                input.extend_from_slice(secret.name.as_bytes());
                input.push(0);
                input.extend_from_slice(Fingerprint::of(value).as_bytes());
            }
        }
        Fingerprint::of(&input).short()
    }
}

/// Whether `crt` is a leaf issued by `ca` and valid at `now`.
fn leaf_issued_by(crt: &[u8], ca: &Ca, now: OffsetDateTime) -> bool {
    let Ok(ders) = pem_blocks::certificates(crt, &Origin::default()) else {
        return false;
    };
    let (Ok(leaf), Ok(ca_cert)) = (
        pem_blocks::parse_certificate(&ders[0]),
        pem_blocks::parse_certificate(ca.cert_der()),
    ) else {
        return false;
    };
    matches!(
        inspect::verify_parsed(&leaf, &[(ca.cert_der(), ca_cert)], now),
        ChainVerdict::Trusted { .. }
    )
}

fn add(t: OffsetDateTime, d: Duration) -> Result<OffsetDateTime, Error> {
    time::Duration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d))
        .ok_or_else(|| Error::TimeOutOfRange {
            now: t,
            what: humantime::format_duration(d).to_string(),
        })
}
