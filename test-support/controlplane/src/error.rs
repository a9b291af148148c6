//! The harness's one error type, and helpers that wrap a cause with what was being done.

use std::time::Duration;

/// Why the control plane could not start, or a request of the harness failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A program of the control plane exited while starting or running.
    #[error("{name} exited ({status}); the end of {log}:\n{tail}")]
    Exited {
        /// The program.
        name: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its log file.
        log: String,
        /// The last lines of its log.
        tail: String,
    },
    /// A bounded wait ran out.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound.
        after: Duration,
    },
    /// Generating a certificate or key failed.
    #[error("generating {what}: {source}")]
    Cert {
        /// Which certificate.
        what: &'static str,
        /// The cause.
        #[source]
        source: rcgen::Error,
    },
    /// A Kubernetes request of the harness failed.
    #[error("{what}: {source}")]
    Kube {
        /// The request.
        what: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// A manifest could not be read or applied as written.
    #[error("{what}: {message}")]
    Manifest {
        /// Which manifest or object.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// The admin kubeconfig could not be turned into a client configuration.
    #[error("loading {path}: {message}")]
    Kubeconfig {
        /// The kubeconfig file.
        path: String,
        /// What kube-rs said.
        message: String,
    },
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

pub(crate) fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Kube { what, source }
}
