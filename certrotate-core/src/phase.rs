//! The words of a rotation's state, shared by the planner, its errors and its reports:
//! the [`Phase`], the [`Strategy`], and what can be wrong with a persisted state
//! ([`StateProblem`]). Nothing here depends on the planner.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use time::OffsetDateTime;

use crate::fingerprint::Fingerprint;
use crate::wire::{ANNOTATION_NEXT, ANNOTATION_PHASE, ANNOTATION_SINCE, ANNOTATION_STATE_FORMAT};

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
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "staged" => Ok(Self::Staged),
            "single-step" => Ok(Self::SingleStep),
            _ => Err(UnknownStrategy),
        }
    }
}

/// A strategy that names none: not `staged` nor `single-step`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownStrategy;

impl fmt::Display for UnknownStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not one of staged, single-step")
    }
}

impl std::error::Error for UnknownStrategy {}
