//! Logging: `--log-format text|json` with RFC 3339 UTC timestamps, verbosity from `-v`
//! and `RUST_LOG`, and a cap on what the HTTP and Kubernetes client libraries may log,
//! whatever `RUST_LOG` says.

use std::io::IsTerminal as _;

use crate::cli::{self, Cli};

pub(crate) fn init_logging(cli: &Cli) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{Layer as _, filter::FilterExt as _};

    let mut default = match (cli.quiet, cli.verbose) {
        (true, _) => "warn".to_owned(),
        (false, 0) => "warn,certrotate_kube=info".to_owned(),
        (false, 1) => "info,certrotate_kube=debug,certrotate_cli=debug".to_owned(),
        _ => "debug,certrotate_kube=trace".to_owned(),
    };
    // The client libraries' own lines (kube-client's "failed with error client error
    // (Connect)" for each retry) only with -v: at the default verbosity a failed request is
    // reported once, by certrotate, naming the object and the API server.
    if cli.verbose == 0 {
        for library in CLIENT_LIBRARIES {
            default.push_str(&format!(",{library}=off"));
        }
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Both formats carry the time as RFC 3339 in UTC, to the microsecond (the `fmt`
    // layer's default timer, `SystemTime`: `2026-11-28T08:46:29.123456Z`).
    let layer = match cli.log_format {
        cli::LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .with_target(false)
            .boxed(),
        cli::LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    // The cap holds for every format: it filters events before any layer formats them.
    let layer = layer.with_filter(filter.and(dependency_log_cap()));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// The HTTP and Kubernetes client libraries, whose lines [`dependency_log_cap`] caps and
/// the default verbosity leaves out.
const CLIENT_LIBRARIES: [&str; 10] = [
    "kube_client",
    "kube",
    "kube_runtime",
    "h2",
    "hyper",
    "hyper_util",
    "tower",
    "tower_http",
    "rustls",
    "tokio_rustls",
];

/// What the HTTP and Kubernetes client libraries may log, whatever `-v` or `RUST_LOG`
/// asks for: both filters must pass, so `RUST_LOG=trace` cannot lift it.
///
/// kube-client logs a whole response body at WARN when it does not deserialize (a Secret's
/// `tls.key` and `ca.key` included), at DEBUG an error answer's body, and at TRACE every
/// `Status`; h2 and hyper log frames and headers (a bearer token) at TRACE. None of those
/// lines is ever let through: kube-client is kept to ERROR (its own connection errors,
/// which carry no body) and the HTTP stack below it to INFO. certrotate reports a failed
/// request itself, naming the object and never quoting the answer.
fn dependency_log_cap() -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::LevelFilter;
    tracing_subscriber::filter::Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("kube_client", LevelFilter::ERROR)
        .with_target("kube", LevelFilter::ERROR)
        .with_target("kube_runtime", LevelFilter::INFO)
        .with_target("h2", LevelFilter::INFO)
        .with_target("hyper", LevelFilter::INFO)
        .with_target("hyper_util", LevelFilter::INFO)
        .with_target("tower", LevelFilter::INFO)
        .with_target("tower_http", LevelFilter::INFO)
        .with_target("rustls", LevelFilter::INFO)
}
