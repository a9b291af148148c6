//! The rotation state persisted on the CA Secret: its wire names (annotations and data
//! keys), the phase and strategy, and the codec between annotations and [`RotationState`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use super::{ObjectRef, ObservedSecret};
use crate::error::Error;
use crate::fingerprint::Fingerprint;

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
/// [`RotationPolicy::retire_after`]: super::RotationPolicy::retire_after
pub(crate) const ANNOTATION_RETIRE_AFTER: &str = "certrotate.io/retire-after";
/// Annotation on the CA Secret: the id of the last [`RotationRequest::Id`] that started a
/// rotation.
///
/// [`RotationRequest::Id`]: super::RotationRequest::Id
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

/// The phase of a rotation, persisted on the CA Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
// Closed on purpose: the protocol's phases; a new one is a new protocol (and a new state format).
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
    type Err = UnknownPhase;

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
        .ok_or(UnknownPhase)
    }
}

/// A phase annotation that names no phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownPhase;

/// What is inconsistent in a persisted rotation state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum StateProblem {
    /// An annotation's value does not parse.
    UnparsableAnnotation {
        /// The annotation.
        annotation: &'static str,
        /// Its value (annotations hold no secrets).
        value: String,
    },
    /// An annotation holds an RFC 3339 time outside the years 0000 to 9999 in UTC
    /// (`9999-12-31T23:59:59-23:59` is year 10000 there).
    TimeOutOfRange {
        /// The annotation.
        annotation: &'static str,
        /// Its value (shown only if short and plain).
        value: String,
    },
    /// The phase annotation names no phase.
    UnknownPhase {
        /// Its value.
        value: String,
    },
    /// A mid-rotation phase without the next CA's fingerprint.
    PhaseWithoutNext {
        /// The phase.
        phase: Phase,
    },
    /// The phase needs a CA whose certificate or key is missing from the Secret.
    MissingCa {
        /// The phase.
        phase: Phase,
        /// The certificate's data key.
        crt: &'static str,
        /// The key's data key.
        key: &'static str,
    },
    /// The phase began later than now: a clock is skewed (this host's, or the one of the
    /// run that wrote it). Waiting would stall silently; proceeding needs `force`.
    SinceInFuture {
        /// When the phase began, as persisted.
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
        /// Now, by this host's clock.
        #[serde(with = "time::serde::rfc3339")]
        now: OffsetDateTime,
    },
    /// The state was written in a newer format than this version reads.
    NewerFormat {
        /// The format the annotations declare.
        found: u32,
        /// The newest format this version reads.
        supported: u32,
    },
    /// A CA certificate is not the one the annotations name.
    FingerprintMismatch {
        /// The data key of the certificate.
        key: String,
        /// Its fingerprint.
        found: Fingerprint,
        /// The fingerprint the annotations name.
        annotated: Fingerprint,
    },
}

/// An annotation value as an error shows it: quoted if short and plain, else only its
/// length. Annotations are read from a Secret (or a `..meta.json` anyone with write access
/// to DIR could fill), so an error never echoes what could be key material.
struct Shown<'a>(&'a str);

impl Shown<'_> {
    /// The longest value quoted (a phase, a fingerprint prefix, a typo); far under the
    /// 40-character runs of base64 a key would show.
    const MAX: usize = 32;
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if crate::redact::plain(self.0, Self::MAX) {
            write!(f, "{:?}", self.0)
        } else {
            write!(f, "(a value of {} bytes, not shown)", self.0.len())
        }
    }
}

#[cfg(test)]
mod shown_tests {
    use super::Shown;

    #[test]
    fn long_or_odd_values_are_never_echoed() {
        assert_eq!(Shown("sideways").to_string(), "\"sideways\"");
        let key = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg";
        assert_eq!(Shown(key).to_string(), "(a value of 48 bytes, not shown)");
        assert!(!Shown("a/b=").to_string().contains("a/b="));
    }
}

impl fmt::Display for StateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnparsableAnnotation { annotation, value } => {
                write!(f, "annotation {annotation}: cannot parse {}", Shown(value))
            }
            Self::TimeOutOfRange { annotation, value } => write!(
                f,
                "annotation {annotation}: {} is outside the years 0000 to 9999 in UTC",
                Shown(value)
            ),
            Self::UnknownPhase { value } => {
                write!(
                    f,
                    "annotation {ANNOTATION_PHASE}: unknown phase {}",
                    Shown(value)
                )
            }
            Self::PhaseWithoutNext { phase } => {
                write!(f, "phase {phase} without {ANNOTATION_NEXT}")
            }
            Self::MissingCa { phase, crt, key } => {
                write!(f, "phase {phase} without {crt} and {key}")
            }
            Self::SinceInFuture { since, now } => write!(
                f,
                "{ANNOTATION_SINCE} {} is later than now ({}): a clock is skewed",
                crate::rfc3339(*since),
                crate::rfc3339(*now)
            ),
            Self::NewerFormat { found, supported } => write!(
                f,
                "annotation {ANNOTATION_STATE_FORMAT}: the rotation state was written in format \
                 {found} by a newer certrotate; this one reads formats up to {supported} and \
                 will not guess: run the newer version (or finish the rotation with it)"
            ),
            Self::FingerprintMismatch {
                key,
                found,
                annotated,
            } => write!(
                f,
                "{key} has fingerprint {found} but the annotations say {annotated}"
            ),
        }
    }
}

/// How a CA rotation proceeds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
// Closed on purpose: the two orders of a rotation; a third is a new protocol.
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
    /// The convergence interval the rotation in progress (or the last one) runs with.
    #[serde(with = "crate::duration_serde::option")]
    pub interval: Option<Duration>,
    /// How long after the rotation ended its carried CAs are retired
    /// (annotation `certrotate.io/retire-after`).
    #[serde(with = "crate::duration_serde::option")]
    pub retire_after: Option<Duration>,
    /// The id of the last request that started a rotation.
    pub request: Option<String>,
}

impl RotationState {
    /// Reads the state from the annotations of the CA Secret `ca_secret`.
    pub fn from_secret(secret: &ObservedSecret, ca_secret: &ObjectRef) -> Result<Self, Error> {
        let a = &secret.annotations;
        let unparsable = |annotation: &'static str, value: &str| Error::InvalidRotationState {
            secret: ca_secret.clone(),
            problem: Box::new(StateProblem::UnparsableAnnotation {
                annotation,
                value: value.to_owned(),
            }),
        };
        let fp = |key: &'static str| -> Result<Option<Fingerprint>, Error> {
            a.get(key)
                .filter(|v| !v.is_empty())
                .map(|v| v.parse().map_err(|_| unparsable(key, v)))
                .transpose()
        };
        // The format first: a newer one may mean anything in the annotations below.
        if let Some(v) = a.get(ANNOTATION_STATE_FORMAT) {
            let found: u32 = v
                .parse()
                .map_err(|_| unparsable(ANNOTATION_STATE_FORMAT, v))?;
            if found > STATE_FORMAT {
                return Err(Error::InvalidRotationState {
                    secret: ca_secret.clone(),
                    problem: Box::new(StateProblem::NewerFormat {
                        found,
                        supported: STATE_FORMAT,
                    }),
                });
            }
        }
        let phase = match a.get(ANNOTATION_PHASE) {
            Some(p) => p.parse().map_err(|_| Error::InvalidRotationState {
                secret: ca_secret.clone(),
                problem: Box::new(StateProblem::UnknownPhase { value: p.clone() }),
            })?,
            None => Phase::Stable,
        };
        let since = a
            .get(ANNOTATION_SINCE)
            .map(|s| {
                // In UTC, within the years certificates can say: every later computation
                // (`since + interval`, formatting it) stays in range.
                crate::parse_rfc3339(s).map_err(|e| match e {
                    crate::TimeError::OutOfRange => Error::InvalidRotationState {
                        secret: ca_secret.clone(),
                        problem: Box::new(StateProblem::TimeOutOfRange {
                            annotation: ANNOTATION_SINCE,
                            value: s.clone(),
                        }),
                    },
                    crate::TimeError::Unparsable => unparsable(ANNOTATION_SINCE, s),
                })
            })
            .transpose()?;
        let strategy = match a.get(ANNOTATION_STRATEGY) {
            Some(s) => s.parse().map_err(|_| unparsable(ANNOTATION_STRATEGY, s))?,
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
            interval: a
                .get(ANNOTATION_INTERVAL)
                .map(|v| crate::parse_duration(v).map_err(|_| unparsable(ANNOTATION_INTERVAL, v)))
                .transpose()?,
            retire_after: a
                .get(ANNOTATION_RETIRE_AFTER)
                .map(|v| {
                    crate::parse_duration(v).map_err(|_| unparsable(ANNOTATION_RETIRE_AFTER, v))
                })
                .transpose()?,
            request: a.get(ANNOTATION_REQUEST).filter(|v| !v.is_empty()).cloned(),
        };
        if matches!(phase, Phase::Prepared | Phase::Trust) && state.next.is_none() {
            return Err(Error::InvalidRotationState {
                secret: ca_secret.clone(),
                problem: Box::new(StateProblem::PhaseWithoutNext { phase }),
            });
        }
        Ok(state)
    }

    /// The annotations that persist this state (`None` removes one).
    pub fn annotations(&self) -> BTreeMap<String, Option<String>> {
        let fp = |f: Option<Fingerprint>| f.map(|f| f.to_string());
        let flag = |b: bool| b.then(|| "true".to_owned());
        BTreeMap::from([
            (
                ANNOTATION_STATE_FORMAT.into(),
                Some(STATE_FORMAT.to_string()),
            ),
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
            (
                ANNOTATION_INTERVAL.into(),
                self.interval
                    .map(|d| humantime::format_duration(d).to_string()),
            ),
            (
                ANNOTATION_RETIRE_AFTER.into(),
                self.retire_after
                    .map(|d| humantime::format_duration(d).to_string()),
            ),
            (ANNOTATION_REQUEST.into(), self.request.clone()),
        ])
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;

    fn secret(annotations: &[(&str, &str)]) -> ObservedSecret {
        ObservedSecret {
            annotations: annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..ObservedSecret::default()
        }
    }

    /// Issue 21: the state carries its format; a newer one is refused, naming both.
    #[test]
    fn a_state_of_a_newer_format_is_refused_naming_both() {
        let ca = ObjectRef::new("ns", "envoy-gateway-ca");
        let written = RotationState::from_secret(&secret(&[]), &ca)
            .unwrap()
            .annotations();
        assert_eq!(
            written[ANNOTATION_STATE_FORMAT].as_deref(),
            Some(STATE_FORMAT.to_string().as_str())
        );
        // This format, and none (state written before the format existed), read.
        for format in [Some("1"), None] {
            let mut a = vec![(ANNOTATION_PHASE, "stable")];
            a.extend(format.map(|f| (ANNOTATION_STATE_FORMAT, f)));
            assert!(
                RotationState::from_secret(&secret(&a), &ca).is_ok(),
                "{format:?}"
            );
        }
        let err = RotationState::from_secret(
            &secret(&[
                (ANNOTATION_STATE_FORMAT, "2"),
                (ANNOTATION_PHASE, "sideways"),
            ]),
            &ca,
        )
        .unwrap_err();
        let Error::InvalidRotationState { problem, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(
            **problem,
            StateProblem::NewerFormat {
                found: 2,
                supported: 1
            }
        );
        let text = problem.to_string();
        assert!(
            text.contains("format 2") && text.contains("up to 1"),
            "{text}"
        );
        // Not a number: unparsable, named.
        let err = RotationState::from_secret(&secret(&[(ANNOTATION_STATE_FORMAT, "two")]), &ca)
            .unwrap_err();
        assert!(
            format!("{err:?}").contains(ANNOTATION_STATE_FORMAT),
            "{err:?}"
        );
    }
}
