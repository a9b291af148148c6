//! The rotation state persisted on the CA Secret: the codec between its annotations
//! (named in `crate::wire`) and [`RotationState`]. Its words (`Phase`, `Strategy`,
//! `StateProblem`) are in `crate::phase`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use super::ObservedSecret;
use crate::error::Error;
use crate::fingerprint::Fingerprint;
use crate::phase::{Phase, StateProblem, Strategy};
use crate::refs::ObjectRef;
use crate::wire::*;

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
