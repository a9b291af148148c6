//! What a failed request says: transient or not (and how long the server asks to wait),
//! and a description in the API server's words (`REASON: MESSAGE`, as kubectl prints it),
//! never quoting an exec plugin's output or a value that did not parse.

use std::time::Duration;

use super::*;

/// `None`: not transient. `Some(None)`: transient, use the backoff. `Some(Some(d))`: the
/// server asked to wait `d`.
// kube::Error is foreign and #[non_exhaustive]: a catch-all is required and means "not ours".
#[allow(clippy::wildcard_enum_match_arm)]
pub(super) fn transient_delay(e: &kube::Error) -> Option<Option<Duration>> {
    match e {
        kube::Error::Api(status) if status.code == 429 || status.code >= 500 => Some(
            status
                .details
                .as_ref()
                .map(|d| d.retry_after_seconds)
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(u64::from(s))),
        ),
        // An answer dropped for its size would be as large again.
        kube::Error::Service(_) if crate::kube_io::too_large(e).is_some() => None,
        kube::Error::HyperError(_) | kube::Error::Service(_) => Some(None),
        _ => None,
    }
}

/// A Kubernetes client error, with its chain of causes flattened into one message in
/// which no cause repeats. kube's own errors print their cause in the message and return
/// it as the source too (`ServiceError: client error (Connect)` → `client error
/// (Connect)`); flattening here keeps every chain certrotate hands out free of repeats.
/// The API status code, if the API server answered with one, is kept as data.
#[derive(Debug)]
pub(super) struct ApiFailure {
    text: String,
    status: Option<u16>,
    /// The answer came but did not deserialize.
    undecodable: bool,
}

impl ApiFailure {
    pub(super) fn new(e: &(dyn std::error::Error + 'static)) -> Self {
        let status = if let Some(kube::Error::Api(s)) = e.downcast_ref::<kube::Error>() {
            Some(s.code)
        } else {
            None
        };
        let undecodable = matches!(
            e.downcast_ref::<kube::Error>(),
            Some(kube::Error::SerdeError(_))
        );
        Self {
            text: Self::describe(e),
            status,
            undecodable,
        }
    }

    pub(super) fn plain(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            status: None,
            undecodable: false,
        }
    }

    pub(super) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
        // An authentication error may carry an exec plugin's output (its credential) or
        // command line, and every error above it in the chain repeats its text: say what
        // failed, not what it printed.
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(c) = cause {
            if let Some(auth) = c.downcast_ref::<kube::client::AuthError>() {
                return format!("authentication failed: {}", describe_auth(auth));
            }
            // serde's message quotes the value it choked on, which may be a Secret's
            // `tls.key`: say where the answer broke, never what it held.
            if let Some(json) = c.downcast_ref::<serde_json::Error>() {
                return describe_undecodable(json);
            }
            // The API server's own words, as kubectl prints them ("Forbidden: secrets is
            // forbidden: User ... cannot create resource ..."), not kube's `Debug` of the
            // whole `Status`.
            if let Some(kube::Error::Api(status)) = c.downcast_ref::<kube::Error>() {
                return describe_status(status);
            }
            cause = c.source();
        }
        // The request bounds say all there is (`ServiceError: ` adds nothing).
        if let Some(bound) = crate::kube_io::too_large(e) {
            return bound.to_string();
        }
        if let Some(bound) = crate::kube_io::timed_out(e) {
            return bound.to_string();
        }
        let mut text = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            let segment = c.to_string();
            if !text.contains(&segment) {
                text.push_str(": ");
                text.push_str(&segment);
            }
            cause = c.source();
        }
        text
    }
}

/// The HTTP status the API server answered a failed request with, if it answered.
pub(super) fn api_status(e: &StoreError) -> Option<u16> {
    match e {
        StoreError::Backend(b) => b.downcast_ref::<ApiFailure>().and_then(|f| f.status),
        StoreError::Conflict
        | StoreError::AlreadyExists
        | StoreError::NotFound
        | StoreError::NotApplicable(_)
        | StoreError::GaveUp { .. } => None,
    }
}

/// A `Status` the API server answered with, as kubectl words it: `REASON: MESSAGE` (the
/// HTTP code where it gave no reason), its control characters escaped by the CLI.
pub(super) fn describe_status(status: &kube::core::Status) -> String {
    let message = status.message.trim();
    match (status.reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{}: {message}", status.reason),
        (false, true) => format!("{} (HTTP {})", status.reason, status.code),
        (true, false) => format!("{message} (HTTP {})", status.code),
        (true, true) => format!("the API server answered HTTP {}", status.code),
    }
}

/// An answer that did not deserialize: its kind of defect and position, not its text.
pub(super) fn describe_undecodable(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "could not be read",
        serde_json::error::Category::Syntax => "is not JSON",
        serde_json::error::Category::Data => "is not the object asked for",
        serde_json::error::Category::Eof => "ends early",
    };
    format!(
        "the API server's answer {what} (at line {}, column {}; its content is withheld: it \
         may hold a private key)",
        e.line(),
        e.column()
    )
}

/// An authentication error without what the plugin printed or was run with.
#[allow(clippy::wildcard_enum_match_arm)] // `AuthError` is non-exhaustive: a new variant is withheld
pub(super) fn describe_auth(e: &kube::client::AuthError) -> String {
    use kube::client::AuthError;
    const WITHHELD: &str = "its output and arguments are withheld: they may hold a credential";
    match e {
        AuthError::AuthExecStart(io) => format!("the exec plugin could not be started: {io}"),
        AuthError::AuthExecRun { out, .. } => {
            format!("the exec plugin failed ({}); {WITHHELD}", out.status)
        }
        AuthError::AuthExecParse(_) => {
            format!("the exec plugin's answer is not an ExecCredential; {WITHHELD}")
        }
        AuthError::AuthExec(_) => format!("the exec plugin failed; {WITHHELD}"),
        AuthError::ReadTokenFile(io, path) => {
            format!("cannot read the token file {}: {io}", path.display())
        }
        AuthError::MissingCommand
        | AuthError::ExecPluginFailed
        | AuthError::UnrefreshableTokenResponse
        | AuthError::ExecMissingClusterInfo => e.to_string(),
        _ => "the kubeconfig's credentials could not be used (details withheld: they may \
              hold a credential)"
            .to_owned(),
    }
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ApiFailure {}

/// Whether the request ran out of time: the request timeout, or an I/O timeout somewhere
/// in the error's chain.
pub(super) fn timed_out(e: &kube::Error) -> bool {
    if crate::kube_io::timed_out(e).is_some() {
        return true;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Whether a read failed because its answer did not deserialize.
pub(super) fn undecodable(e: &StoreError) -> bool {
    match e {
        StoreError::Backend(b) => b
            .downcast_ref::<ApiFailure>()
            .is_some_and(|f| f.undecodable),
        StoreError::Conflict
        | StoreError::AlreadyExists
        | StoreError::NotFound
        | StoreError::NotApplicable(_)
        | StoreError::GaveUp { .. } => false,
    }
}

// kube::Error is foreign and #[non_exhaustive]: a catch-all is required.
#[allow(clippy::wildcard_enum_match_arm)]
pub(super) fn classify(e: kube::Error) -> StoreError {
    match &e {
        kube::Error::Api(status) if status.is_conflict() => StoreError::Conflict,
        kube::Error::Api(status) if status.is_already_exists() => StoreError::AlreadyExists,
        kube::Error::Api(status) if status.is_not_found() => StoreError::NotFound,
        _ => StoreError::Backend(Box::new(ApiFailure::new(&e))),
    }
}

#[cfg(test)]
mod failure_tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::ApiFailure;

    /// Red-team R3-2: a failing exec plugin's output (the credential it printed) and its
    /// command line were printed in the error, through every error that wraps it.
    #[test]
    fn an_exec_plugin_failure_is_described_without_its_output() {
        let auth = kube::client::AuthError::AuthExecRun {
            cmd: "/usr/bin/get-token --password hunter2".into(),
            out: Box::new(std::process::Output {
                status: std::process::ExitStatus::from_raw(256),
                stdout: b"SECRET-TOKEN-XYZ\n".to_vec(),
                stderr: b"oops".to_vec(),
            }),
        };
        let error = kube::Error::Auth(auth);
        let text = ApiFailure::new(&error).to_string();
        assert!(
            !text.contains("SECRET-TOKEN") && !text.contains("hunter2"),
            "{text}"
        );
        assert!(
            text.contains("exec plugin failed") && text.contains("exit status: 1"),
            "{text}"
        );
    }

    /// Finding 1 of round 3: an answer that does not parse was described by serde, which
    /// quotes the value it could not take (a Secret's data). Where, never what.
    #[test]
    fn a_parse_failure_is_described_without_the_value() {
        let parse = serde_json::from_str::<std::collections::BTreeMap<String, u32>>(
            r#"{"tls.key": "SECRET-KEY-MATERIAL"}"#,
        )
        .unwrap_err();
        let text = ApiFailure::new(&kube::Error::SerdeError(parse)).to_string();
        assert!(!text.contains("SECRET-KEY"), "{text}");
        assert!(text.contains("line 1, column"), "{text}");
    }

    /// Issue 22: a run names the context and server it connected to; `--context` wins
    /// over the kubeconfig's current context, and the URL is shown as the file spells it.
    #[tokio::test]
    async fn a_connected_store_names_its_context_and_server() {
        use std::os::unix::fs::PermissionsExt as _;

        use crate::Store as _;

        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- {name: a, cluster: {server: 'https://10.0.0.1:6443'}}\n\
             - {name: b, cluster: {server: 'https://b.example'}}\nusers:\n- {name: u, user: {token: t}}\n\
             contexts:\n- {name: one, context: {cluster: a, user: u}}\n- {name: two, context: {cluster: b, user: u}}\n\
             current-context: one\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let current = super::KubeStore::connect(Some(&path), None).await.unwrap();
        assert_eq!(
            current.endpoint(),
            Some(&super::KubeEndpoint {
                context: Some("one".into()),
                server: "https://10.0.0.1:6443".into(),
            })
        );
        assert_eq!(
            current.describe(),
            "kubernetes context one at https://10.0.0.1:6443"
        );
        let chosen = super::KubeStore::connect(Some(&path), Some("two"))
            .await
            .unwrap()
            .with_dry_run(true);
        assert_eq!(
            chosen.describe(),
            "kubernetes context two at https://b.example (server-side dry run)"
        );
    }
}
