//! The `certrotate` command, as a library the tests can call; `main.rs` only calls [`main`].
#![forbid(unsafe_code)]
// A new variant of a workspace enum (a step, an event, a reason) must fail to compile in
// every consumer instead of falling into a catch-all arm.
#![warn(clippy::wildcard_enum_match_arm)]
#![warn(missing_docs)]

mod activity;
mod cli;
mod dry_run;
mod escape;
mod input;
mod logging;
mod metrics;
mod output;
mod probes;
mod profiles;
pub use profiles::BUILT_IN_PROFILES;
mod pushgateway;
mod restarts;
mod rotate;
mod simulate;
mod target;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use certrotate_core::evidence::Endpoint;
use certrotate_core::plan::ObjectRef;
use certrotate_core::plan::wire::KEY_TLS_KEY;
use certrotate_core::{BundlePolicy, Origin, Profile, inspect_pem};
use certrotate_core::{RotationPolicy, Trigger};
#[cfg(feature = "kube")]
use certrotate_kube::KubeStore;
use certrotate_kube::evidence::Probes;
use certrotate_kube::probe::ProbeLimits;
use certrotate_kube::{
    Clock, DirStore, RunMode, SecretStore, Store, SystemClock, TrustChecks, observe,
};
use clap::{CommandFactory, Parser};

use input::{Inputs, certificate_inputs, input_name, is_stdin, read_input, read_walked_file};
use probes::{ProfileEndpoints, endpoints, probe_endpoints};
use restarts::restart_commands;
use rotate::{KubeClient, recorder, rotate};
pub use rotate::{WAIT_TEMPLATE, wait_bar, waiting_for};

pub use cli::{Cli, Command, Format};
pub use pushgateway::Pushgateway;

/// Builds the store named by the target flags and runs `$body` with it, `$place` naming
/// it (for the run's first line). `$body` is a `Result`; in Kubernetes mode its error names
/// the API server ("on kubernetes context edge at https://...: reading secret ...").
macro_rules! with_store {
    ($target:expr, $dry_run:expr, $store:ident, $place:ident => $body:expr) => {
        with_store!($target, $dry_run, tidy = false, $store, _client, $place => $body)
    };
    ($target:expr, $dry_run:expr, tidy = $tidy:expr, $store:ident, $client:ident, $place:ident => $body:expr) => {
        with_store!($target, $dry_run, tidy = $tidy, restarts = std::collections::BTreeMap::new(), $store, $client, $place => $body)
    };
    // `tidy`: a run that may write removes a crash's leftovers in DIR first.
    // `restarts`: local mode's restart commands (`--restart-command`).
    // `$client`: the Kubernetes client (`None` in local mode), to record Events with.
    ($target:expr, $dry_run:expr, tidy = $tidy:expr, restarts = $restarts:expr, $store:ident, $client:ident, $place:ident => $body:expr) => {{
        let target: &cli::TargetArgs = $target;
        if let Some(_flag) = target.kube_flag() {
            #[cfg(not(feature = "kube"))]
            return Err(without_kube(_flag).into());
            #[cfg(feature = "kube")]
            {
                activity::doing("connecting to the Kubernetes API");
                let limits = certrotate_kube::ClientLimits::default()
                    .with_request_timeout(target.limits.request_timeout);
                let $store = KubeStore::connect_with(
                    target.kubeconfig.as_deref(),
                    target.context.as_deref(),
                    limits,
                )
                .await
                .context("connecting to Kubernetes (kubeconfig or in-cluster)")?
                .with_dry_run($dry_run);
                let $place = target::Place::kube(&$store);
                let server = format!("on {}", $place);
                let $client = Some($store.client().clone());
                let result: Result<_> = async { $body }.await;
                result.context(server)
            }
        } else {
            // No implicit folder: `run` refused a command line without a target already.
            let Some(dir) = target.dir.clone() else {
                return Err(target::no_target().into());
            };
            let $place = target::Place::local(&dir)
                .with_standalone(target.dir_layout() == certrotate_kube::DirLayout::Standalone);
            let $store = DirStore::new(dir)
                .with_trust_checks(if target.insecure_skip_dir_checks {
                    TrustChecks::SkipUnsafe
                } else {
                    TrustChecks::Enforce
                })
                .with_layout(target.dir_layout());
            if $tidy {
                $store
                    .tidy()
                    .context("opening DIR (and removing what an interrupted run left there)")?;
            }
            let $store = certrotate_kube::host::HostRestarts::new($store, $restarts);
            let $client: Option<KubeClient> = None;
            $body
        }
    }};
}

/// The most bytes read from one input file or stdin.
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// Exit status: a check found an untrusted leaf or a missing Secret.
pub const EXIT_UNTRUSTED: u8 = 3;
/// Exit status: a check found a certificate expiring soon.
pub const EXIT_EXPIRING: u8 = 4;
/// Exit status: leaves are due for renewal but the CA expires first ("the CA expires at
/// T: rotate it"), and no rotation policy (`--rotate-ca-before`) allows rotating it.
pub const EXIT_CA_EXPIRES: u8 = 5;
/// Exit status: the run did not finish within `--timeout` (nor would a wait of `rotate
/// --wait` end within it).
pub const EXIT_TIMEOUT: u8 = 6;

/// Parses the arguments, runs the command and turns errors into a message and exit 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init_logging(&cli);
    // One thread is enough: the work is sequential by design (writes in order), and RSA
    // key generation runs on its own threads.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            if let Some(hint) = hint(&e) {
                eprintln!("hint: {hint}");
            }
            exit_code(&e)
        }
    }
}

/// The shortest convergence interval a staged rotation in Kubernetes mode accepts without
/// `--allow-short-interval`: the kubelet's default 60 s sync period plus its Secret cache
/// delay.
const KUBELET_MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(120);

/// What the command line can do about an error the library returned, in its own flags.
fn hint(error: &anyhow::Error) -> Option<&'static str> {
    let unproven = error.chain().any(|cause| {
        // `certrotate_kube::Error::Plan` is transparent: the core error is not a link of
        // the chain of its own.
        let core = cause.downcast_ref::<certrotate_core::Error>().or_else(|| {
            if let Some(certrotate_kube::Error::Plan(e)) = cause.downcast_ref() {
                Some(e)
            } else {
                None
            }
        });
        matches!(core, Some(certrotate_core::Error::UnprovenCaSecret { .. }))
    });
    if unproven {
        return Some(
            "if you created that CA Secret yourself, run `certrotate rotate \
             --trust-existing-ca` once; otherwise delete it and run again",
        );
    }
    // The store's error says what it refused in its own terms; the flag is the CLI's.
    let untrusted = error.chain().any(|cause| {
        let dir = cause
            .downcast_ref::<certrotate_kube::DirError>()
            .or_else(|| {
                if let Some(certrotate_kube::StoreError::Backend(b)) = cause.downcast_ref() {
                    b.downcast_ref()
                } else {
                    None
                }
            });
        matches!(dir, Some(certrotate_kube::DirError::Untrusted { .. }))
    });
    untrusted.then_some("--insecure-skip-dir-checks overrides this check, unsafely")
}

/// The exit status of a failed run: a usage error, a time limit, or any other failure.
pub fn exit_code(e: &anyhow::Error) -> ExitCode {
    ExitCode::from(exit_status(e))
}

/// [`exit_code`] as a number (for the outcome metrics).
fn exit_status(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<UsageError>().is_some() {
        EXIT_USAGE
    } else if e.downcast_ref::<activity::TimedOut>().is_some()
        || e.chain().any(|c| {
            matches!(
                c.downcast_ref::<certrotate_kube::Error>(),
                Some(certrotate_kube::Error::Timeout { .. })
            ) || matches!(
                c.downcast_ref::<certrotate_core::Error>(),
                Some(certrotate_core::Error::ConvergenceTimeout { .. })
            ) || matches!(
                c.downcast_ref::<certrotate_kube::Error>(),
                Some(certrotate_kube::Error::Plan(
                    certrotate_core::Error::ConvergenceTimeout { .. }
                ))
            )
        })
    {
        EXIT_TIMEOUT
    } else {
        1
    }
}

/// Exit status: a usage error (also clap's).
pub const EXIT_USAGE: u8 = 2;

/// A command line that parses but does not make sense (exit 2, as clap's own errors).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// An error and its causes on one line, `outer: cause: root`, each cause once.
///
/// `{:#}` prints every error of the chain, and an error whose message already ends with its
/// source's message (thiserror's `"reading secret {secret}: {source}"` with `source` as the
/// `#[source]`) would print that cause twice: a cause the previous message already ends
/// with is not repeated.
///
/// Control characters are escaped (`\1B`, as OpenSSL prints them): a message may quote an
/// API server's answer, a file name or a certificate's name, and is printed to a terminal.
pub fn error_chain(error: &anyhow::Error) -> String {
    let error: &(dyn std::error::Error + 'static) = error.as_ref();
    escape::escape_control(&certrotate_core::error_chain(error)).into_owned()
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let format = cli.output;
    if format == Format::Openmetrics && !matches!(cli.command, Command::Check(_)) {
        bail!("-o openmetrics is only for `certrotate check`");
    }
    // Built without Kubernetes support: a cluster flag is refused before anything runs,
    // never ignored (which would run on something other than the cluster asked for).
    if !KUBE_SUPPORT && let Some(flag) = cli.command.kube_flag() {
        return Err(without_kube(flag).into());
    }
    // No implicit target: a command that reads or writes Secrets names its folder or its
    // cluster (a `./certs` of whatever folder it ran in got a new CA key before).
    if let Some(target) = cli.command.target() {
        target.require()?;
    }
    // `rotate` and `renew` push their own outcome, whatever it is (a failure included:
    // in a CronJob nothing else would report it).
    let outcome = outcome_push(&cli.command)?;
    let facts = std::sync::Mutex::new(metrics::RunFacts::default());
    // One deadline for the whole run, whatever it is doing: a request that trickles, a
    // storm of retries, a wait. Each request has its own (--request-timeout) within it.
    let result = match cli.command.run_limit() {
        Some(limit) => {
            activity::within(limit, run_command(cli.command, format, cli.verbose, &facts)).await
        }
        None => run_command(cli.command, format, cli.verbose, &facts).await,
    };
    if let Some((push, namespace, command)) = outcome {
        let facts = facts.lock().map(|f| *f).unwrap_or_default();
        let code = match &result {
            Ok(_) => facts.code.unwrap_or(0),
            Err(e) => exit_status(e),
        };
        let registry = metrics::run_outcome(&namespace, command, code, facts, SystemClock.now());
        let grouping = [("namespace", namespace.as_str()), ("command", command)];
        // A failed push is reported, and fails a run that succeeded; it never hides the
        // run's own failure.
        let pushed = match metrics::encode(&registry) {
            Ok(text) => push.push(&grouping, text).await,
            Err(e) => Err(e),
        };
        match (pushed, &result) {
            (Ok(()), _) => {
                let url = push.gateway.group_url(&push.job, &grouping);
                tracing::info!(url = %url, "run outcome pushed");
            }
            (Err(e), Ok(_)) => return Err(e),
            (Err(e), Err(_)) => tracing::error!("{}", error_chain(&e)),
        }
    }
    result
}

/// The Pushgateway, namespace and command of a `rotate` or `renew` run's outcome, if
/// `--pushgateway` was given.
fn outcome_push(command: &Command) -> Result<Option<(pushgateway::Push, String, &'static str)>> {
    let (push, target, name) = match command {
        Command::Rotate(args) => (&args.push, &args.target, "rotate"),
        Command::Renew(args) => (&args.push, &args.target, "renew"),
        Command::Status(_)
        | Command::Check(_)
        | Command::Simulate(_)
        | Command::Inspect(_)
        | Command::Bundle(_)
        | Command::Completions { .. } => return Ok(None),
    };
    let Some(push) = pushgateway::Push::from_args(push)? else {
        return Ok(None);
    };
    // The namespace the run acts on (a profile that does not load is the run's own
    // failure, reported under the namespace asked for).
    let namespace = profiles::load_profile(target, |_| {})
        .map(|p| p.namespace)
        .unwrap_or_else(|_| target.namespace.clone().unwrap_or_default());
    Ok(Some((push, namespace, name)))
}

async fn run_command(
    command: Command,
    format: Format,
    verbose: u8,
    facts: &std::sync::Mutex<metrics::RunFacts>,
) -> Result<ExitCode> {
    match command {
        Command::Rotate(args) => {
            let profile = profiles::load_profile(&args.target, |p| {
                if let Some(alg) = args.key_algorithm {
                    p.set_key_algorithm(alg);
                }
                if let Some(v) = args.ca_validity {
                    p.ca.validity = v;
                }
                if let Some(v) = args.leaf_validity {
                    p.leaf.validity = v;
                }
            })?;
            // Probed while a phase converges: the phase also waits for their evidence.
            let probed = endpoints(&profile, &args.endpoints)?;
            let mut options = RotationPolicy::default();
            options.convergence_timeout = args.convergence_timeout;
            // `--overwrite` rotates away from the CA current when the run starts (the
            // engine resolves it at its first read, so a repeat or a racing run rotates
            // once); a schedule is the other trigger.
            options.trigger = match (args.overwrite, args.rotate_ca_before) {
                (true, _) => Trigger::Now,
                (false, Some(before)) => Trigger::Schedule {
                    rotate_ca_before: before,
                },
                (false, None) => Trigger::Never,
            };
            options.renew_before = args.rotate_ca_before;
            options = options.with_force(args.force);
            options.strategy = args.strategy;
            if let Some(interval) = args.convergence_interval {
                options.convergence_interval = interval;
                // An explicit interval with --force replaces the one a rotation in
                // progress persisted (a typo such as `5M` is otherwise kept to the end).
                options.replace_interval = args.force;
            }
            options.trust_existing_ca = args.trust_existing_ca;
            options.adopt = args.adopt;
            options.retire_after = args.retire_after;
            if args.target.uses_kube()
                && options.convergence_interval < KUBELET_MIN_INTERVAL
                && options.strategy == certrotate_core::plan::Strategy::Staged
                && !args.allow_short_interval
            {
                return Err(UsageError(format!(
                    "--convergence-interval {}: with --kube, a staged rotation waits at least {} \
                     between its steps (the kubelet syncs a mounted Secret every 60 s, plus its \
                     cache delay); a shorter wait writes the new leaves before every component \
                     loaded the new trust, the single-step outage. Use --allow-short-interval \
                     if your kubelets sync faster (test clusters), or --strategy single-step",
                    humantime::format_duration(options.convergence_interval),
                    humantime::format_duration(KUBELET_MIN_INTERVAL),
                ))
                .into());
            }
            options.rotate_hmac = args.rotate_hmac;
            options.drop_old_ca = args.drop_old_ca;
            options.bundle_policy = BundlePolicy::new(args.max_carried);
            let mode = if args.wait {
                RunMode::UntilDone {
                    timeout: args.target.limits.run_limit(true),
                }
            } else {
                RunMode::Once
            };
            let server_dry_run = args.dry_run == Some(cli::DryRun::Server);
            if server_dry_run && !args.target.uses_kube() {
                bail!("--dry-run=server needs --kube (local mode has no API server)");
            }
            let restarts = restart_commands(&profile, &args.restarts)?;
            with_store!(&args.target, server_dry_run, tidy = args.dry_run.is_none(), restarts = restarts, store, client, place => {
                let target = target::Target::new(place, &profile.namespace);
                let events = client.filter(|_| args.dry_run.is_none()).map(recorder);
                let probes = store.probes(&profile, probed)?;
                if probes.is_empty() && options.convergence_timeout.is_some() {
                    return Err(UsageError(
                        "--convergence-timeout: no endpoint to wait for (give --endpoint \
                         SECRET=HOST:PORT, or name the servers in the profile's components: \
                         a service and port for --kube, an address for --dir)"
                            .into(),
                    )
                    .into());
                }
                rotate(store, profile, options, mode, args.dry_run, format, events, &target, facts, probes).await
            })
        }
        Command::Renew(args) => {
            let profile = profiles::load_profile(&args.target, |_| {})?;
            let mut options = RotationPolicy::default();
            options.renew_before = Some(args.before);
            let restarts = restart_commands(&profile, &args.restarts)?;
            with_store!(&args.target, false, tidy = true, restarts = restarts, store, client, place => {
                let target = target::Target::new(place, &profile.namespace);
                let events = client.map(recorder);
                let probes = Probes::new(Vec::new(), ProbeLimits::default());
                rotate(store, profile, options, RunMode::Once, None, format, events, &target, facts, probes).await
            })
        }
        Command::Status(args) => {
            let target = args.target;
            let profile = profiles::load_profile(&target, |_| {})?;
            let endpoints = endpoints(&profile, &args.endpoints)?;
            // Read only: a folder that is not there is a typo to report, not an install.
            if let Some(dir) = &target.dir
                && !dir.is_dir()
            {
                bail!(
                    "--dir {}: no such folder (status only reads; `rotate` creates it)",
                    dir.display()
                );
            }
            with_store!(&target, false, store, place => {
                let target = target::Target::new(place, &profile.namespace);
                status(store, profile, &endpoints, format, &target).await
            })
        }
        Command::Check(args) => {
            let profile = profiles::load_profile(&args.target, |_| {})?;
            let endpoints = endpoints(&profile, &args.endpoints)?;
            let push = pushgateway::Push::from_args(&args.push)?;
            with_store!(&args.target, false, store, place => {
                let target = target::Target::new(place, &profile.namespace);
                check(store, profile, &endpoints, args.warn_within, format, push.as_ref(), &target).await
            })
        }
        Command::Simulate(args) => simulate::run(args, format).await,
        Command::Inspect(args) => inspect(&args, format).await,
        Command::Bundle(args) => bundle(&args, format, verbose),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "certrotate",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Whether this binary was built with Kubernetes support (the `kube` feature, a default).
pub const KUBE_SUPPORT: bool = cfg!(feature = "kube");

/// The error for a cluster flag (`--kube`, ...) given to a binary built without the `kube`
/// feature (exit 2, a usage error).
pub fn without_kube(flag: &str) -> UsageError {
    UsageError(format!(
        "{flag}: certrotate was built without Kubernetes support (feature `kube`); local \
         mode (--dir) needs none. For a cluster, reinstall with the default features: \
         `cargo install --locked --path certrotate-cli` (or build with `--features kube`)"
    ))
}

/// `status`: the library's observation and its read-only view of the state; no key is
/// generated and no plan is made.
async fn status<S: Store + ProfileEndpoints>(
    store: S,
    profile: Profile,
    endpoints: &[Endpoint],
    format: Format,
    target: &target::Target,
) -> Result<ExitCode> {
    activity::doing("reading the profile's objects");
    let probes = store.probes(&profile, endpoints.to_vec())?;
    let observed = observe(&store, &profile).await?;
    let now = SystemClock.now();
    let status =
        certrotate_core::plan::status(&profile, &observed, &RotationPolicy::default(), now)?;
    // Each certificate's end of validity: the CA Secret's CAs and every component's leaf.
    let objects = certrotate_core::plan::ProfileObjects::of(&profile);
    let keys = [
        (&objects.ca_secret, certrotate_core::plan::wire::KEY_CA_CRT),
        (
            &objects.ca_secret,
            certrotate_core::plan::wire::KEY_NEXT_CA_CRT,
        ),
    ]
    .into_iter()
    .chain(
        objects
            .components
            .iter()
            .map(|s| (s, certrotate_core::plan::wire::KEY_TLS_CRT)),
    );
    let mut certificates = Vec::new();
    for (secret, key) in keys {
        let Some(pem) = observed.secrets.get(secret).and_then(|s| s.data.get(key)) else {
            continue;
        };
        let origin = Origin::new(format!("secret {secret} key {key}"));
        for c in inspect_pem(pem, &origin, now)? {
            certificates.push(output::StatusCertificate {
                secret: secret.clone(),
                key: key.to_owned(),
                block: c.block,
                fingerprint: c.fingerprint,
                not_after: c.not_after,
            });
        }
    }
    let endpoints = probe_endpoints(&profile, &observed, &probes).await;
    output::status(&status, &certificates, &endpoints, now, format, target)?;
    Ok(ExitCode::SUCCESS)
}

async fn check<S: Store + ProfileEndpoints>(
    store: S,
    profile: Profile,
    endpoints: &[Endpoint],
    warn_within: std::time::Duration,
    format: Format,
    push: Option<&pushgateway::Push>,
    target: &target::Target,
) -> Result<ExitCode> {
    activity::doing("reading the profile's objects");
    let probes = store.probes(&profile, endpoints.to_vec())?;
    let observed = observe(&store, &profile).await?;
    let now = SystemClock.now();
    let report = certrotate_core::check(&profile, &observed, now, warn_within)?;
    // What the servers show: for people and for the metrics; it changes no exit status.
    let endpoints = probe_endpoints(&profile, &observed, &probes).await;
    if format == Format::Openmetrics || push.is_some() {
        let mut registry = metrics::collect(&profile, &observed, &report, now);
        metrics::endpoints(&mut registry, &profile.namespace, &endpoints.views);
        let text = metrics::encode(&registry)?;
        if let Some(push) = push {
            activity::doing("pushing the metrics to the Pushgateway");
            let grouping = [("namespace", profile.namespace.as_str())];
            push.push(&grouping, text.clone()).await?;
            let url = push.gateway.group_url(&push.job, &grouping);
            tracing::info!(url = %url, "metrics pushed");
        }
        if format == Format::Openmetrics {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    if format != Format::Openmetrics {
        output::check(&report, &endpoints, format, target)?;
    }
    Ok(if !report.all_trusted() {
        ExitCode::from(EXIT_UNTRUSTED)
    } else if !report.expiring.is_empty() {
        ExitCode::from(EXIT_EXPIRING)
    } else {
        ExitCode::SUCCESS
    })
}

async fn inspect(args: &cli::InspectArgs, format: Format) -> Result<ExitCode> {
    let now = SystemClock.now();
    let mut rows = Vec::new();
    let secret = args.secret().map_err(UsageError)?;
    if let Some(name) = secret {
        let profile = profiles::load_profile(&args.target, |_| {})?;
        let secret = ObjectRef::new(&profile.namespace, name);
        let (observed, place) = with_store!(&args.target, false, store, place => {
            activity::doing(format!("reading secret {secret}"));
            store
                .read_secret(&secret)
                .await
                .map(|s| (s, place))
                .map_err(|e| anyhow::anyhow!("reading secret {secret}: {e}"))
        })?;
        let Some(observed) = observed else {
            bail!(
                "secret {secret} not found in {}",
                escape::Esc(target::Target::new(place, &profile.namespace))
            );
        };
        for (key, value) in &observed.data {
            if key == KEY_TLS_KEY || key.ends_with(".key") || !looks_like_certificates(value) {
                continue;
            }
            let origin = Origin::new(format!("secret {secret} key {key}"));
            rows.extend(
                inspect_pem(value, &origin, now)?
                    .into_iter()
                    .map(|c| (origin.to_string(), c)),
            );
        }
    } else {
        let path = PathBuf::from(&args.what);
        let mut add = |name: String, data: &[u8]| -> Result<()> {
            let origin = Origin::new(name);
            rows.extend(
                inspect_pem(data, &origin, now)?
                    .into_iter()
                    .map(|c| (origin.to_string(), c)),
            );
            Ok(())
        };
        match certificate_inputs(&path)? {
            Inputs::One(file) => add(input_name(&file), &read_input(&file)?)?,
            Inputs::Walked { root, files } => {
                // Every file a walk reads counts against one budget: a folder of links to
                // one big bundle must not multiply it.
                let mut budget = MAX_INPUT_BYTES;
                for (relative, is_link) in files {
                    let shown = path.join(&relative);
                    match read_walked_file(&root, &relative, &shown, budget) {
                        Ok(data) => {
                            budget -= data.len() as u64;
                            add(shown.display().to_string(), &data)?;
                        }
                        // A link that leads out of the folder (or to no file): skipped.
                        Err(e) if is_link => tracing::warn!(
                            "skipped {}: {}",
                            escape::Esc(shown.display()),
                            error_chain(&e)
                        ),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    if rows.is_empty() {
        bail!("{}: no certificates found", args.what);
    }
    output::certificates(&rows, format)?;
    Ok(ExitCode::SUCCESS)
}

fn looks_like_certificates(value: &[u8]) -> bool {
    value
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
}

fn bundle(args: &cli::BundleArgs, format: Format, verbose: u8) -> Result<ExitCode> {
    if is_stdin(&args.new) && is_stdin(&args.old) {
        bail!("NEW and OLD cannot both be stdin");
    }
    let new = read_input(&args.new)?;
    let old = read_input(&args.old)?;
    let now = args.now.unwrap_or_else(|| SystemClock.now());
    // Skipped blocks are summarised as they come (all kept with -v): a million junk
    // blocks in OLD cost counters, not a million report entries.
    let mut summary = output::SkipSummary::new(verbose > 0);
    let bundle = BundlePolicy::new(args.max_carried)
        .bundle_with(&new, &old, now, &mut |block| summary.add(block))
        .with_context(|| {
            format!(
                "bundling {} with {}",
                args.new.display(),
                args.old.display()
            )
        })?;
    // With -o json|yaml the data is one document on stdout: the bundle and its report.
    #[derive(serde::Serialize)]
    struct Bundled<'a> {
        pem: &'a str,
        report: output::WrittenReport<'a>,
    }
    let document = Bundled {
        pem: &bundle.pem,
        report: output::WrittenReport::new(&bundle.report, &summary),
    };
    if let Some(text) = output::data(&document, format)? {
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    std::io::stdout().write_all(bundle.pem.as_bytes())?;
    drop(old);
    output::bundle_report(&bundle.report, &summary, format)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19 finding 9: an error quoting an API server's message (or a file name)
    /// reached the terminal raw. Every cause of the chain is escaped; a backslash stays.
    #[test]
    fn an_error_chain_with_control_characters_is_escaped() {
        let error = anyhow::anyhow!("the server says \x1b[2J\rALL OK\u{9b}")
            .context("reading secret ns/a\\b");
        assert_eq!(
            error_chain(&error),
            "reading secret ns/a\\b: the server says \\1B[2J\\0DALL OK\\9B"
        );
    }

    /// `--help` listed statuses 0 to 4 but not 5, which `rotate` and `renew` return.
    #[test]
    fn help_lists_every_exit_status() {
        for code in [
            0,
            1,
            2,
            EXIT_UNTRUSTED,
            EXIT_EXPIRING,
            EXIT_CA_EXPIRES,
            EXIT_TIMEOUT,
        ] {
            assert!(
                cli::EXIT_STATUS.contains(&format!("\n  {code}  ")),
                "exit status {code} missing from --help"
            );
        }
    }
}
