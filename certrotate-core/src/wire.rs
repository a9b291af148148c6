//! The names certrotate reads and writes on Kubernetes objects (and in local mode's
//! folders): the rotation state's annotations, the CA Secret's label, the data keys, the
//! pod-template annotations of a restart. Public (as `plan::wire`) are only the names other
//! software reads; the state's annotations are read and written through
//! [`RotationState`](crate::plan::RotationState).

/// Annotation on the CA Secret: the rotation phase.
pub(crate) const ANNOTATION_PHASE: &str = "certrotate.io/phase";
/// Annotation: the format of the rotation state in these annotations ([`STATE_FORMAT`]).
/// Absent means 1, the format before it was written.
pub(crate) const ANNOTATION_STATE_FORMAT: &str = "certrotate.io/state-format";
/// The format of the rotation state this version writes and reads. A state written in a
/// newer format is refused, never guessed at: an old CronJob image meeting the annotations
/// of a newer Job must not act on fields it does not know.
pub(crate) const STATE_FORMAT: u32 = 1;
/// Annotation on the CA Secret: when the phase began (RFC 3339).
pub(crate) const ANNOTATION_SINCE: &str = "certrotate.io/phase-since";
/// Annotation on the CA Secret: fingerprint of the current CA.
pub(crate) const ANNOTATION_CURRENT: &str = "certrotate.io/current-ca";
/// Annotation on the CA Secret: fingerprint of the next CA, mid-rotation.
pub(crate) const ANNOTATION_NEXT: &str = "certrotate.io/next-ca";
/// Annotation on the CA Secret: fingerprint of the CA before the current one.
pub(crate) const ANNOTATION_PREVIOUS: &str = "certrotate.io/previous-ca";
/// Annotation on the CA Secret: the strategy of the rotation in progress.
pub(crate) const ANNOTATION_STRATEGY: &str = "certrotate.io/strategy";
/// Annotation on the CA Secret: whether the rotation drops the old CA at the end.
pub(crate) const ANNOTATION_DROP_OLD_CA: &str = "certrotate.io/drop-old-ca";
/// Annotation on the CA Secret: whether the rotation also rotates the HMAC keys.
pub(crate) const ANNOTATION_ROTATE_HMAC: &str = "certrotate.io/rotate-hmac";
/// Annotation on the CA Secret: the convergence interval of the rotation in progress (or
/// the last one), which every wait of it uses.
pub(crate) const ANNOTATION_INTERVAL: &str = "certrotate.io/convergence-interval";
/// Annotation on the CA Secret: how long after the rotation in progress (or the last one)
/// ended the CAs the bundles carry besides the current one are retired
/// ([`RotationPolicy::retire_after`]). Absent in states written before it existed: then the
/// run's option applies. An older certrotate ignores it, and keeps the old CA as it did.
///
/// [`RotationPolicy::retire_after`]: crate::RotationPolicy::retire_after
pub(crate) const ANNOTATION_RETIRE_AFTER: &str = "certrotate.io/retire-after";
/// Annotation on the CA Secret: the id of the last [`Trigger::Once`] that started a
/// rotation.
///
/// [`Trigger::Once`]: crate::Trigger::Once
pub(crate) const ANNOTATION_REQUEST: &str = "certrotate.io/rotation-request";
/// Annotation on an HMAC Secret: the rotation (next CA fingerprint) that last rotated it.
pub(crate) const ANNOTATION_HMAC_ROTATION: &str = "certrotate.io/hmac-rotation";
/// Pod-template annotation `kubectl rollout restart` sets.
pub const ANNOTATION_RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// Pod-template annotation: the state of the mounted Secrets the pods were restarted for,
/// so that a rerun does not restart them again.
pub const ANNOTATION_RESTARTED_FOR: &str = "certrotate.io/restarted-for";
/// Label on the CA Secret (value `true`): what a controller selects the CA Secrets of every
/// control plane by (`certrotate.io/ca=true`).
pub const LABEL_CA: &str = "certrotate.io/ca";

/// Data key of the CA Secret: current CA certificate.
pub const KEY_CA_CRT: &str = "ca.crt";
/// Data key of the CA Secret: current CA private key.
pub(crate) const KEY_CA_KEY: &str = "ca.key";
/// Data key of the CA Secret: next CA certificate, mid-rotation.
pub const KEY_NEXT_CA_CRT: &str = "next-ca.crt";
/// Data key of the CA Secret: next CA private key, mid-rotation.
pub(crate) const KEY_NEXT_CA_KEY: &str = "next-ca.key";
/// Data key of the CA Secret: the key of a current CA that could not be used (weak, not a
/// CA, expired, not its certificate's), moved aside when a rotation recovers from it.
pub(crate) const KEY_UNUSABLE_CA_KEY: &str = "unusable-ca.key";
/// Data key of a component Secret: the trust bundle.
pub const KEY_TRUST: &str = "ca.crt";
/// Data key of a component Secret: the leaf certificate.
pub const KEY_TLS_CRT: &str = "tls.crt";
/// Data key of a component Secret: the leaf private key.
pub const KEY_TLS_KEY: &str = "tls.key";
