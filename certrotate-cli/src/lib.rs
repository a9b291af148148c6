//! The `certrotate` command, as a library the tests can call; `main.rs` only calls [`main`].
#![forbid(unsafe_code)]
// A new variant of a workspace enum (a step, an event, a reason) must fail to compile in
// every consumer instead of falling into a catch-all arm.
#![warn(clippy::wildcard_enum_match_arm)]
#![warn(missing_docs)]

mod cli;
mod dry_run;
mod metrics;
mod output;
mod rotate;
mod simulate;

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use certrotate_core::plan::{KEY_TLS_KEY, ObjectRef, PlanOptions, RotationRequest};
use certrotate_core::{BundlePolicy, Origin, Profile, inspect_pem};
#[cfg(feature = "kube")]
use certrotate_kube::KubeStore;
use certrotate_kube::{
    Clock, DirStore, RunMode, SecretStore, Store, SystemClock, TrustChecks, observe,
};
use clap::{CommandFactory, Parser};

use rotate::{KubeClient, recorder, rotate};
pub use rotate::{WAIT_TEMPLATE, wait_bar, waiting_for};

pub use cli::{Cli, Command, Format};
pub use metrics::Pushgateway;

/// Builds the store named by the target flags and runs `$body` with it.
macro_rules! with_store {
    ($target:expr, $dry_run:expr, $store:ident => $body:expr) => {
        with_store!($target, $dry_run, tidy = false, $store, _client => $body)
    };
    ($target:expr, $dry_run:expr, tidy = $tidy:expr, $store:ident => $body:expr) => {
        with_store!($target, $dry_run, tidy = $tidy, $store, _client => $body)
    };
    // `tidy`: a run that may write removes a crash's leftovers in DIR first.
    // `$client`: the Kubernetes client (`None` in local mode), to record Events with.
    ($target:expr, $dry_run:expr, tidy = $tidy:expr, $store:ident, $client:ident => $body:expr) => {{
        let target: &cli::TargetArgs = $target;
        if let Some(_flag) = target.kube_flag() {
            #[cfg(not(feature = "kube"))]
            return Err(without_kube(_flag).into());
            #[cfg(feature = "kube")]
            {
                let $store =
                    KubeStore::connect(target.kubeconfig.as_deref(), target.context.as_deref())
                        .await
                        .context("connecting to Kubernetes (kubeconfig or in-cluster)")?
                        .with_dry_run($dry_run);
                let $client = Some($store.client().clone());
                $body
            }
        } else {
            let $store =
                DirStore::new(target.dir.clone().unwrap_or_else(|| PathBuf::from("certs")))
                    .with_trust_checks(if target.insecure_skip_dir_checks {
                        TrustChecks::SkipUnsafe
                    } else {
                        TrustChecks::Enforce
                    });
            if $tidy {
                $store
                    .tidy()
                    .context("opening DIR (and removing what an interrupted run left there)")?;
            }
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

/// Parses the arguments, runs the command and turns errors into a message and exit 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
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
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
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
pub fn error_chain(error: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !last.is_empty() && last.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
        last = text;
    }
    out
}

fn init_logging(cli: &Cli) {
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "warn,certrotate_kube=info",
        (false, 1) => "info,certrotate_kube=debug,certrotate_cli=debug",
        _ => "debug,certrotate_kube=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_target(false)
        .without_time()
        .try_init();
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let format = cli.output;
    if format == Format::Openmetrics && !matches!(cli.command, Command::Check(_)) {
        bail!("-o openmetrics is only for `certrotate check`");
    }
    // Built without Kubernetes support: a cluster flag is refused before anything runs,
    // never ignored (which would run on ./certs instead of the cluster).
    if !KUBE_SUPPORT && let Some(flag) = cli.command.kube_flag() {
        return Err(without_kube(flag).into());
    }
    match cli.command {
        Command::Rotate(args) => {
            let profile = load_profile(&args.target, |p| {
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
            let mut options = PlanOptions::default();
            // `--overwrite` is a request resolved against the store when the run starts.
            let request_rotation = args.overwrite;
            options.rotate_ca_before = args.rotate_ca_before;
            options.renew_before = args.rotate_ca_before;
            options.force = args.force;
            options.strategy = args.strategy;
            options.convergence_interval = args.convergence_interval;
            options.rotate_hmac = args.rotate_hmac;
            options.drop_old_ca = args.drop_old_ca;
            options.bundle_policy = BundlePolicy::new(args.max_carried);
            let mode = if args.wait {
                RunMode::UntilDone {
                    timeout: args.timeout,
                }
            } else {
                RunMode::Once
            };
            let server_dry_run = args.dry_run == Some(cli::DryRun::Server);
            if server_dry_run && !args.target.uses_kube() {
                bail!("--dry-run=server needs --kube (local mode has no API server)");
            }
            with_store!(&args.target, server_dry_run, tidy = args.dry_run.is_none(), store, client => {
                if request_rotation {
                    let observed = observe(&store, &profile).await?;
                    let base = certrotate_core::plan::rotation_base(&profile, &observed)?;
                    options.request = Some(RotationRequest::AwayFrom(base));
                }
                let events = client.filter(|_| args.dry_run.is_none()).map(|c| recorder(c, &profile));
                rotate(store, profile, options, mode, args.dry_run, format, events).await
            })
        }
        Command::Renew(args) => {
            let profile = load_profile(&args.target, |_| {})?;
            let mut options = PlanOptions::default();
            options.renew_before = Some(args.before);
            with_store!(&args.target, false, tidy = true, store, client => {
                let events = client.map(|c| recorder(c, &profile));
                rotate(store, profile, options, RunMode::Once, None, format, events).await
            })
        }
        Command::Status(target) => {
            let profile = load_profile(&target, |_| {})?;
            // Read only: a folder that is not there is a typo to report, not an install.
            if !target.uses_kube() {
                let dir = target.dir.clone().unwrap_or_else(|| PathBuf::from("certs"));
                if !dir.is_dir() {
                    bail!(
                        "--dir {}: no such folder (status only reads; `rotate` creates it)",
                        dir.display()
                    );
                }
            }
            with_store!(&target, false, store => status(store, profile, format).await)
        }
        Command::Check(args) => {
            let profile = load_profile(&args.target, |_| {})?;
            let push = args
                .pushgateway
                .as_ref()
                .map(|gw| (gw, args.pushgateway_job.as_str()));
            with_store!(&args.target, false, store => {
                check(store, profile, args.warn_within, format, push).await
            })
        }
        Command::Simulate(args) => simulate::run(args, format).await,
        Command::Inspect(args) => inspect(&args, format).await,
        Command::Bundle(args) => bundle(&args, format, cli.verbose),
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

fn load_profile(target: &cli::TargetArgs, adjust: impl FnOnce(&mut Profile)) -> Result<Profile> {
    let mut profile = if target.profile == "envoy-gateway" {
        Profile::envoy_gateway("envoy-gateway-system")
    } else {
        let path = Path::new(&target.profile);
        let is_file_name = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("toml" | "yaml" | "yml")
        ) || target.profile.contains('/')
            || is_stdin(path);
        if !is_file_name {
            return Err(UsageError(unknown_profile(&target.profile)).into());
        }
        let text = String::from_utf8(read_input_with(path, check_profile_file)?)
            .with_context(|| format!("profile {}: not UTF-8", path.display()))?;
        let origin = Origin::new(path.display().to_string());
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Profile::from_toml(&text, &origin)?,
            Some("yaml" | "yml") => Profile::from_yaml(&text, &origin)?,
            _ => bail!(
                "--profile {:?}: not `envoy-gateway` nor a .toml/.yaml file",
                target.profile
            ),
        }
    };
    if let Some(ns) = &target.namespace {
        profile = profile.with_namespace(ns)?;
    }
    adjust(&mut profile);
    profile.validate()?;
    Ok(profile)
}

/// The profiles built into the binary.
pub const BUILT_IN_PROFILES: [&str; 1] = ["envoy-gateway"];

/// `--profile NAME` that is neither built in nor a profile file: list the built-ins and
/// suggest the nearest, as kubectl and cargo do for a mistyped name.
fn unknown_profile(name: &str) -> String {
    let nearest = BUILT_IN_PROFILES
        .iter()
        .map(|p| (edit_distance(name, p), p))
        .filter(|(d, p)| *d <= p.len() / 3)
        .min();
    let mut message = format!(
        "--profile {name:?}: no such built-in profile (built in: {}), nor a profile file \
         (.toml, .yaml or .yml)",
        BUILT_IN_PROFILES.join(", ")
    );
    if let Some((_, p)) = nearest {
        message.push_str(&format!("; did you mean {p:?}?"));
    }
    message
}

/// Levenshtein distance between two short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
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
async fn status<S: Store>(store: S, profile: Profile, format: Format) -> Result<ExitCode> {
    let observed = observe(&store, &profile).await?;
    let now = SystemClock.now();
    let status = certrotate_core::plan::status(&profile, &observed, &PlanOptions::default(), now)?;
    // Each certificate's end of validity: the CA Secret's CAs and every component's leaf.
    let objects = certrotate_core::plan::ProfileObjects::of(&profile);
    let keys = [
        (&objects.ca_secret, certrotate_core::plan::KEY_CA_CRT),
        (&objects.ca_secret, certrotate_core::plan::KEY_NEXT_CA_CRT),
    ]
    .into_iter()
    .chain(
        objects
            .components
            .iter()
            .map(|s| (s, certrotate_core::plan::KEY_TLS_CRT)),
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
    output::status(&status, &certificates, now, format)?;
    Ok(ExitCode::SUCCESS)
}

async fn check<S: Store>(
    store: S,
    profile: Profile,
    warn_within: std::time::Duration,
    format: Format,
    push: Option<(&Pushgateway, &str)>,
) -> Result<ExitCode> {
    let observed = observe(&store, &profile).await?;
    let now = SystemClock.now();
    let report = certrotate_core::check(&profile, &observed, now, warn_within)?;
    if format == Format::Openmetrics || push.is_some() {
        let registry = metrics::collect(&profile, &observed, &report, now);
        let text = metrics::encode(&registry)?;
        if let Some((gateway, job)) = push {
            let grouping = [("namespace", profile.namespace.as_str())];
            gateway
                .push(
                    job,
                    &grouping,
                    text.clone(),
                    std::time::Duration::from_secs(30),
                )
                .await?;
            tracing::info!(url = %gateway.group_url(job, &grouping), "metrics pushed");
        }
        if format == Format::Openmetrics {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    if format != Format::Openmetrics {
        output::check(&report, format)?;
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
        let profile = load_profile(&args.target, |_| {})?;
        let secret = ObjectRef::new(&profile.namespace, name);
        let observed = with_store!(&args.target, false, store => {
            store.read_secret(&secret).await.map_err(|e| anyhow::anyhow!("reading secret {secret}: {e}"))?
        });
        let Some(observed) = observed else {
            bail!("secret {secret} not found");
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
                        Err(e) if is_link => tracing::warn!("skipped {}: {e:#}", shown.display()),
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

/// The most files `inspect FOLDER` reads.
const MAX_WALKED_FILES: usize = 10_000;

/// What `inspect PATH` reads.
enum Inputs {
    /// Stdin (`-`, `/dev/stdin`), a file or a pipe.
    One(PathBuf),
    /// The `*.crt` / `*.pem` files found below a folder, relative to it, each with whether
    /// it is a link.
    Walked {
        /// The folder: every file is opened through it, so nothing resolves outside it.
        root: cap_std::fs::Dir,
        /// The files, in order.
        files: Vec<(PathBuf, bool)>,
    },
}

/// The inputs of `inspect PATH`. A folder is walked three levels deep, skipping the `..`
/// folders of the directory store and never entering a folder through a link (so a link
/// cannot make the walk leave the folder or go round in circles); at most
/// [`MAX_WALKED_FILES`] files. The files found may be links (a local-mode DIR's keys are
/// `KEY -> ..data/KEY`): they are opened beneath the folder, so one leading out of it is
/// not read.
fn certificate_inputs(path: &Path) -> Result<Inputs> {
    let is_folder = !is_stdin(path)
        && std::fs::metadata(path)
            .with_context(|| format!("{}", path.display()))?
            .is_dir();
    if !is_folder {
        // A file, a pipe (`<(...)`), or something `read_input` refuses, naming it.
        return Ok(Inputs::One(path.to_owned()));
    }
    let root = cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority())
        .with_context(|| format!("{}", path.display()))?;
    let mut files = Vec::new();
    let mut stack = vec![(PathBuf::new(), 0)];
    while let Some((folder, depth)) = stack.pop() {
        let listing = if folder.as_os_str().is_empty() {
            root.entries()
        } else {
            root.read_dir(&folder)
        };
        let mut entries: Vec<_> = listing
            .with_context(|| format!("{}", path.join(&folder).display()))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            // The entry's own type: a link to a folder is not a folder here.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let relative = folder.join(entry.file_name());
            if kind.is_dir() && depth < 3 {
                stack.push((relative, depth + 1));
            } else if (kind.is_file() || kind.is_symlink())
                && (name.ends_with(".crt") || name.ends_with(".pem"))
            {
                if files.len() == MAX_WALKED_FILES {
                    bail!(
                        "{}: more than {MAX_WALKED_FILES} certificate files; inspect a \
                         smaller folder",
                        path.display()
                    );
                }
                files.push((relative, kind.is_symlink()));
            }
        }
    }
    files.sort();
    Ok(Inputs::Walked { root, files })
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

/// Opens `path` for reading without blocking: on a regular file O_NONBLOCK changes
/// nothing; on a FIFO the open returns at once instead of waiting for a writer, so what
/// was opened can be judged first.
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    options.open(path)
}

/// Reads a file found by walking a folder, through the folder's handle (nothing resolves
/// outside it): opened without blocking (a FIFO swapped in after the walk saw a file would
/// otherwise wait forever for a writer), read only if what was opened is a regular file,
/// and never past `budget` bytes (what is left of the walk's [`MAX_INPUT_BYTES`]).
fn read_walked_file(
    root: &cap_std::fs::Dir,
    relative: &Path,
    shown: &Path,
    budget: u64,
) -> Result<Vec<u8>> {
    let name = shown.display();
    let mut options = cap_std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use cap_std::fs::OpenOptionsExt as _;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let file = root
        .open_with(relative, &options)
        .with_context(|| format!("opening {name}"))?
        .into_std();
    let kind = file
        .metadata()
        .with_context(|| format!("reading {name}"))?
        .file_type();
    if !kind.is_file() {
        bail!(
            "{name}: not a regular file ({}); it changed after the folder was listed",
            describe_file_type(&kind)
        );
    }
    let mut data = Vec::new();
    file.take(budget + 1)
        .read_to_end(&mut data)
        .with_context(|| format!("reading {name}"))?;
    if data.len() as u64 > budget {
        bail!(
            "{name}: the files of the folder hold more than the limit of {MAX_INPUT_BYTES} \
             bytes together"
        );
    }
    Ok(data)
}

/// Whether a path names this process's standard input.
fn is_stdin(path: &Path) -> bool {
    [
        Path::new("-"),
        Path::new("/dev/stdin"),
        Path::new("/dev/fd/0"),
    ]
    .contains(&path)
}

/// How an input is named in messages: its path, or `stdin`.
fn input_name(path: &Path) -> String {
    if is_stdin(path) {
        "stdin".into()
    } else {
        path.display().to_string()
    }
}

/// Reads a file, a pipe, or stdin (`-`, `/dev/stdin`), refusing more than
/// [`MAX_INPUT_BYTES`] and anything else (a folder, a device but `/dev/null`, the empty
/// input): the read stops at the limit plus one byte, whatever the file's metadata says.
fn read_input(path: &Path) -> Result<Vec<u8>> {
    read_input_with(path, |_, _| Ok(()))
}

/// [`read_input`], with `check` run on what was opened (its metadata, from the handle)
/// before anything is read.
fn read_input_with(
    path: &Path,
    check: impl FnOnce(&str, &std::fs::Metadata) -> Result<()>,
) -> Result<Vec<u8>> {
    let name = input_name(path);
    let mut data = Vec::new();
    if path == Path::new("/dev/null") {
        return Ok(data);
    }
    if is_stdin(path) {
        std::io::stdin()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut data)
            .context("reading stdin")?;
    } else {
        // Opened without blocking, so that a FIFO is judged (by `check`) before anything
        // waits on it.
        let file = open_nonblocking(path).with_context(|| format!("opening {name}"))?;
        // The type of what was opened, not of what the path named a moment before.
        let meta = file.metadata().with_context(|| format!("reading {name}"))?;
        let kind = meta.file_type();
        if !kind.is_file() && !is_pipe(&kind) {
            bail!(
                "{name}: not a regular file nor a pipe ({})",
                describe_file_type(&kind)
            );
        }
        check(&name, &meta)?;
        if is_pipe(&kind) {
            // A FIFO, judged: now wait for its writer, as `cat` would, on the very FIFO
            // opened (not by its path, which may name something else by now).
            read_pipe(&file, &mut data).with_context(|| format!("reading {name}"))?;
        } else {
            file.take(MAX_INPUT_BYTES + 1)
                .read_to_end(&mut data)
                .with_context(|| format!("reading {name}"))?;
        }
    }
    if data.len() as u64 > MAX_INPUT_BYTES {
        bail!("{name}: more than the limit of {MAX_INPUT_BYTES} bytes");
    }
    Ok(data)
}

/// Reads a FIFO or pipe opened with `O_NONBLOCK` to its end (at most
/// [`MAX_INPUT_BYTES`] + 1 bytes): `poll` waits for a writer's data or for its last writer
/// to leave (never reported before a writer came), so this waits as a blocking read of a
/// FIFO opened the usual way would.
#[cfg(unix)]
fn read_pipe(mut file: &std::fs::File, data: &mut Vec<u8>) -> std::io::Result<()> {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut buffer = [0u8; 64 * 1024];
    while data.len() as u64 <= MAX_INPUT_BYTES {
        // Before each read: with no writer yet, a read would say end of file at once.
        match poll(&mut [PollFd::new(&file, PollFlags::IN)], None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        match file.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => data.extend_from_slice(&buffer[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn read_pipe(file: &std::fs::File, data: &mut Vec<u8>) -> std::io::Result<()> {
    file.take(MAX_INPUT_BYTES + 1).read_to_end(data).map(|_| ())
}

/// A profile chooses which Secrets are written and what goes into every certificate, so
/// one that any user may change is refused (as DIR is), and one owned by another user
/// (not root) is used with a warning: `sudo certrotate --profile ./mine.yaml` is common.
#[cfg(unix)]
fn check_profile_file(name: &str, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    // A FIFO is judged as a file is: a named one in another user's folder is that user's
    // to write. The caller's own pipes (`<(...)`) are the caller's, mode 0600.
    let mode = meta.mode() & 0o7777;
    if mode & 0o002 != 0 {
        bail!(
            "profile {name}: writable by every user (mode {mode:04o}), so anyone may choose \
             the Secrets written and the names certified; `chmod o-w` it, or pipe it in \
             with `--profile - < FILE`"
        );
    }
    let euid = rustix::process::geteuid().as_raw();
    if meta.uid() != euid && meta.uid() != 0 {
        tracing::warn!(
            "profile {name} belongs to uid {}, not to this user (uid {euid}) nor root: \
             that user chooses the Secrets written and the names certified",
            meta.uid()
        );
    } else if mode & 0o020 != 0 {
        tracing::warn!(
            "profile {name} is writable by its group (mode {mode:04o}): its members choose \
             the Secrets written and the names certified"
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_profile_file(_: &str, _: &std::fs::Metadata) -> Result<()> {
    Ok(())
}

#[cfg(unix)]
fn is_pipe(kind: &std::fs::FileType) -> bool {
    std::os::unix::fs::FileTypeExt::is_fifo(kind)
}

#[cfg(not(unix))]
fn is_pipe(_: &std::fs::FileType) -> bool {
    false
}

fn describe_file_type(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a folder"
    } else if is_pipe(kind) {
        "a FIFO"
    } else {
        "not a regular file"
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn read_one(folder: &Path, relative: &str, budget: u64) -> Result<Vec<u8>> {
        let root = cap_std::fs::Dir::open_ambient_dir(folder, cap_std::ambient_authority())?;
        read_walked_file(&root, Path::new(relative), &folder.join(relative), budget)
    }

    /// Red-team finding 02: a `*.crt` swapped for a FIFO after the folder walk hung
    /// `inspect FOLDER` forever in a blocking open. It must be refused at once, named.
    #[test]
    fn a_walked_file_swapped_for_a_fifo_is_refused_without_blocking() {
        let tmp = tempfile::tempdir().expect("tempdir");
        mkfifo(&tmp.path().join("ca.crt"), 0o600);
        let (tx, rx) = std::sync::mpsc::channel();
        let folder = tmp.path().to_owned();
        std::thread::spawn(move || {
            tx.send(read_one(&folder, "ca.crt", MAX_INPUT_BYTES).map_err(|e| format!("{e:#}")))
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("reading a FIFO found by the walk blocked");
        let error = result.expect_err("a FIFO must be refused");
        assert!(
            error.contains("ca.crt") && error.contains("a FIFO"),
            "{error}"
        );
    }

    /// `--help` listed statuses 0 to 4 but not 5, which `rotate` and `renew` return.
    #[test]
    fn help_lists_every_exit_status() {
        for code in [0, 1, 2, EXIT_UNTRUSTED, EXIT_EXPIRING, EXIT_CA_EXPIRES] {
            assert!(
                cli::EXIT_STATUS.contains(&format!("\n  {code}  ")),
                "exit status {code} missing from --help"
            );
        }
    }

    /// Red-team: root read a world-writable profile owned by another user without a word.
    #[test]
    fn a_world_writable_profile_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("p.yaml");
        std::fs::write(&file, b"namespace: ns\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let error = read_input_with(&file, check_profile_file).expect_err("refused");
        let error = format!("{error:#}");
        assert!(
            error.contains("p.yaml") && error.contains("writable by every user"),
            "{error}"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(read_input_with(&file, check_profile_file).is_ok());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).expect("chmod");
        assert!(
            read_input_with(&file, check_profile_file).is_ok(),
            "a warning only"
        );
    }

    fn mkfifo(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(mode),
            0,
        )
        .expect("mkfifo");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// Red-team N5: a world-writable FIFO as `--profile` skipped the checks (and blocked
    /// until someone wrote to it). It is judged as a file is, before any wait.
    #[test]
    fn a_world_writable_fifo_profile_is_refused_without_blocking() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let fifo = tmp.path().join("p.yaml");
        mkfifo(&fifo, 0o666);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            tx.send(read_input_with(&fifo, check_profile_file).map_err(|e| format!("{e:#}")))
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the FIFO was waited on before it was judged");
        let error = result.expect_err("refused");
        assert!(error.contains("writable by every user"), "{error}");
    }

    /// A FIFO of this user's still works, whether its writer comes before or after the
    /// read starts, and a writer that leaves ends the input.
    #[test]
    fn a_fifo_is_read_whenever_its_writer_comes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for delay in [0, 300] {
            let fifo = tmp.path().join(format!("in-{delay}"));
            mkfifo(&fifo, 0o600);
            let writer = {
                let fifo = fifo.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_millis(delay));
                    std::fs::write(fifo, b"one\n").expect("write");
                })
            };
            assert_eq!(read_input(&fifo).expect("read"), b"one\n", "delay {delay}");
            writer.join().expect("writer");
        }
    }

    /// Red-team N6: the folder walk followed links (out of the folder, and round in
    /// circles). Folders are entered only as themselves; file links are read only if
    /// they resolve beneath the folder (a local-mode DIR's `KEY -> ..data/KEY`).
    #[test]
    fn the_folder_walk_stays_in_the_folder() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        std::fs::write(outside.join("secret.crt"), b"x").expect("write");
        std::fs::write(outside.join("deep.crt"), b"x").expect("write");
        let folder = tmp.path().join("folder");
        std::fs::create_dir_all(folder.join("sub/..data")).expect("mkdir");
        std::fs::write(folder.join("a.crt"), b"a").expect("write");
        std::fs::write(folder.join("sub/..data/tls.crt"), b"t").expect("write");
        std::os::unix::fs::symlink("..data/tls.crt", folder.join("sub/tls.crt")).expect("symlink");
        std::os::unix::fs::symlink(outside.join("secret.crt"), folder.join("link.crt"))
            .expect("symlink");
        std::os::unix::fs::symlink("../outside/secret.crt", folder.join("up.crt"))
            .expect("symlink");
        std::os::unix::fs::symlink(&outside, folder.join("out")).expect("symlink");
        for i in 0..20 {
            std::os::unix::fs::symlink(".", folder.join(format!("loop{i}"))).expect("symlink");
        }
        let Inputs::Walked { root, files } = certificate_inputs(&folder).expect("walk") else {
            panic!("a folder is walked");
        };
        let names: Vec<(&str, bool)> = files
            .iter()
            .map(|(p, link)| (p.to_str().expect("utf-8"), *link))
            .collect();
        assert_eq!(
            names,
            [
                ("a.crt", false),
                ("link.crt", true),
                ("sub/tls.crt", true),
                ("up.crt", true)
            ]
        );
        let read =
            |relative: &str| read_walked_file(&root, Path::new(relative), Path::new(relative), 100);
        assert_eq!(read("a.crt").expect("a.crt"), b"a");
        assert_eq!(read("sub/tls.crt").expect("the layout's link"), b"t");
        assert!(
            read("link.crt").is_err(),
            "an absolute link out of the folder"
        );
        assert!(read("up.crt").is_err(), "a relative link out of the folder");
    }

    #[test]
    fn a_walked_regular_file_is_read() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("ca.crt");
        std::fs::write(&file, b"data").expect("write");
        assert_eq!(read_one(tmp.path(), "ca.crt", 4).expect("read"), b"data");
        let error = read_one(tmp.path(), "ca.crt", 3).expect_err("over the budget");
        assert!(
            format!("{error:#}").contains("more than the limit"),
            "{error:#}"
        );
    }
}
