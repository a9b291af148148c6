//! The one error type of the core.

use std::fmt;

use time::OffsetDateTime;

use crate::phase::{Phase, StateProblem};
use crate::refs::{AnyRef, ObjectRef};

/// A boxed cause from a dependency, kept out of the public API's types.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Where a PEM input came from, so an error can name it: `secret ns/name key ca.crt`,
/// `file ./ca.pem`, or `new` / `old` for the bundling rule.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Origin(String);

impl Origin {
    /// An origin with the given description.
    pub fn new(description: impl Into<String>) -> Self {
        Self(description.into())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("input")
        } else {
            f.write_str(&self.0)
        }
    }
}

impl From<&str> for Origin {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for Origin {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// Everything that can fail in `certrotate-core`.
///
/// Each variant names the operation and carries what a user needs to act on it: the input
/// (`origin`), the 1-based PEM `block`, the parameter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Generating a private key failed.
    #[error("generating a {algorithm} key")]
    GenerateKey {
        /// The algorithm asked for.
        algorithm: crate::KeyAlgorithm,
        /// The crypto backend's error.
        #[source]
        source: BoxError,
    },
    /// Signing a certificate failed.
    #[error("signing the certificate for {subject:?}")]
    SignCertificate {
        /// The certificate's common name.
        subject: String,
        /// The crypto backend's error.
        #[source]
        source: BoxError,
    },
    /// A parameter of a CA, a leaf or a profile is invalid.
    #[error("invalid {field}: {reason}")]
    InvalidParameter {
        /// The parameter (`validity`, `dns_names[2]`, `components[1].secret`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A PEM input has no PEM block at all.
    #[error("{origin}: no PEM block found")]
    NoPemBlock {
        /// The input.
        origin: Origin,
    },
    /// A PEM block could not be decoded (bad base64, no END line, ...).
    #[error("{origin} block {block}: malformed PEM: {reason}")]
    MalformedPem {
        /// The input.
        origin: Origin,
        /// 1-based index of the block.
        block: usize,
        /// What is wrong.
        reason: String,
    },
    /// A PEM block that must hold a certificate holds something else.
    #[error("{origin} block {block}: not a certificate (found {label})")]
    NotACertificate {
        /// The input.
        origin: Origin,
        /// 1-based index of the block.
        block: usize,
        /// The PEM label found instead of `CERTIFICATE`.
        label: String,
    },
    /// A `CERTIFICATE` block does not hold a parsable X.509 certificate.
    #[error("{origin} block {block}: not a valid X.509 certificate: {reason}")]
    InvalidCertificate {
        /// The input.
        origin: Origin,
        /// 1-based index of the block.
        block: usize,
        /// The parser's complaint.
        reason: String,
    },
    /// A private key could not be loaded.
    #[error("{origin}: invalid private key: {reason}")]
    InvalidPrivateKey {
        /// The input.
        origin: Origin,
        /// What is wrong.
        reason: String,
    },
    /// A CA certificate and key do not belong together, or the certificate is not fit to
    /// be a CA (the one CA policy: [`CaDefect`](crate::CaDefect)).
    #[error("{origin}: unusable CA: {defect}")]
    UnusableCa {
        /// The input.
        origin: Origin,
        /// What is wrong.
        defect: crate::CaDefect,
    },
    /// An input is larger than the limit for its kind.
    #[error("{origin}: {size} bytes is more than the limit of {limit} bytes")]
    TooLarge {
        /// The input.
        origin: Origin,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A profile file could not be parsed.
    #[error("profile {origin}: {reason}")]
    ParseProfile {
        /// The file.
        origin: Origin,
        /// The parser's message, with line and column.
        reason: String,
    },
    /// The persisted rotation state (annotations of the CA Secret) is inconsistent.
    #[error("rotation state in secret {secret}: {problem}")]
    InvalidRotationState {
        /// The CA Secret.
        secret: ObjectRef,
        /// What is inconsistent (boxed: it is rare, and keeps every `Result` small).
        problem: Box<StateProblem>,
    },
    /// The CA Secret holds a CA that issued none of the profile's leaves: certrotate did
    /// not install it (or its first install stopped before any leaf was written), and it is
    /// not used unless the caller says it put it there
    /// ([`RotationPolicy::trust_existing_ca`](crate::RotationPolicy::trust_existing_ca)).
    #[error(
        "secret {secret} holds a CA ({}) that issued none of the profile's leaves: it was \
         not made by certrotate's install, and whoever can create Secrets in the namespace \
         could have put it there; it is used only if you did",
        ca.short()
    )]
    UnprovenCaSecret {
        /// The CA Secret.
        secret: ObjectRef,
        /// Its CA.
        ca: crate::Fingerprint,
    },
    /// A phase waited longer than its convergence timeout for the servers to show the
    /// trust or the leaves it wrote; it stays where it is (it never advances without
    /// evidence).
    #[error(
        "phase {phase} has waited {} since it began, longer than the convergence timeout, and \
         {} endpoint(s) still lag: {}; the phase stays where it is",
        humantime::format_duration(*waited),
        lagging.len(),
        lagging.join("; ")
    )]
    ConvergenceTimeout {
        /// The CA Secret holding the state.
        secret: ObjectRef,
        /// The phase.
        phase: Phase,
        /// How long it has waited.
        waited: std::time::Duration,
        /// Each lagging endpoint and what it still shows.
        lagging: Vec<String>,
    },
    /// A time computation went out of range.
    #[error(
        "time out of range: {} + {}",
        crate::rfc3339(*base),
        humantime::format_duration(*duration)
    )]
    TimeOutOfRange {
        /// The base time.
        base: OffsetDateTime,
        /// The duration that did not fit.
        duration: std::time::Duration,
    },
}

impl Error {
    /// The object of a profile the error is about, if it is about one (the CA Secret of an
    /// inconsistent rotation state). Errors about PEM inputs name their input in `origin`.
    pub fn object(&self) -> Option<AnyRef> {
        match self {
            Self::InvalidRotationState { secret, .. }
            | Self::UnprovenCaSecret { secret, .. }
            | Self::ConvergenceTimeout { secret, .. } => Some(AnyRef::Secret(secret.clone())),
            Self::GenerateKey { .. }
            | Self::SignCertificate { .. }
            | Self::InvalidParameter { .. }
            | Self::NoPemBlock { .. }
            | Self::MalformedPem { .. }
            | Self::NotACertificate { .. }
            | Self::InvalidCertificate { .. }
            | Self::InvalidPrivateKey { .. }
            | Self::UnusableCa { .. }
            | Self::TooLarge { .. }
            | Self::ParseProfile { .. }
            | Self::TimeOutOfRange { .. } => None,
        }
    }
}

/// An error and its causes as one line, joined by `": "`, the way every certrotate front
/// end prints them (the CLI's `error:` line, a Kubernetes Event's note). A cause whose text
/// the line already ends with is not repeated: `thiserror`'s `"reading secret {secret}:
/// {source}"` with `source` also the `#[source]` prints its cause once.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}
