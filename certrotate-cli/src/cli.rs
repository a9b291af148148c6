//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use certrotate_core::KeyAlgorithm;
use certrotate_core::plan::Strategy;
use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// The exit statuses, after `--help` (tested to list every `EXIT_*` constant).
pub(crate) const EXIT_STATUS: &str = "\
EXIT STATUS:
  0  success, including a rotation that advanced a phase or found it too early to advance
     (the output says when the next step may run)
  1  failure: bad input, a file or API error; the message names the object
  2  usage error
  3  check: a leaf is not trusted by a peer, or a Secret or key is missing;
     simulate: a step breaks a combination of leaf and trust store
  4  check: a certificate expires within --warn-within
  5  rotate, renew: leaves are due for renewal but the CA expires first, and no rotation
     policy (--rotate-ca-before) allows rotating it: rotate the CA
  6  a time limit ran out: the run did not finish within --timeout (the message says what
     it was doing), or a phase waited longer than --convergence-timeout for its
     --endpoint servers (the message names each lagging one; the phase stays)";

/// Rotate the TLS certificates of a Kubernetes control plane without a single failed mTLS
/// handshake: trust first, then leaves, resumable after any crash.
#[derive(Debug, Parser)]
#[command(name = "certrotate", version, after_help = EXIT_STATUS, max_term_width = 100)]
pub struct Cli {
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less logging: only warnings and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Output format of commands that print data.
    #[arg(short, long, value_enum, default_value_t = Format::Human, global = true)]
    pub output: Format,
    /// Format of the log lines on stderr; both carry an RFC 3339 UTC timestamp.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line for a person: time, level, message and fields.
    Text,
    /// One JSON object a line (`timestamp`, `level`, `fields`, `target`), for a log pipeline.
    Json,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables and sentences.
    Human,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// OpenMetrics text (check only), for a node-exporter textfile collector.
    Openmetrics,
}

const ROTATE_EXAMPLES: &str = "\
Examples:
  certrotate rotate --dir ./certs                      # install what is missing
  certrotate rotate --kube --overwrite --dry-run       # what a rotation would write
  certrotate rotate --kube --overwrite                 # prepare + trust, then exit 0
  certrotate rotate --kube --overwrite --wait          # the whole rotation, with its waits
  certrotate rotate --kube --adopt --wait              # take over upstream certgen's Secrets
  certrotate rotate --kubeconfig prod.yaml --context edge -n edge-system --overwrite";

const STATUS_EXAMPLES: &str = "\
Examples:
  certrotate status --dir ./certs
  certrotate status --kube -o yaml";

const RENEW_EXAMPLES: &str = "\
Examples:
  certrotate renew --dir ./certs --before 30d
  certrotate renew --kube --namespace envoy-gateway-system";

const BUNDLE_EXAMPLES: &str = "\
Examples:
  certrotate bundle new-ca.crt old/ca.crt > ca.crt
  kubectl get secret envoy -o jsonpath='{.data.ca\\.crt}' | base64 -d | certrotate bundle new.crt -
  certrotate bundle new-ca.crt old/ca.crt -o json      # the bundle and its report as one document";

const INSPECT_EXAMPLES: &str = "\
Examples:
  certrotate inspect ./certs
  certrotate inspect secret envoy --kube
  certrotate inspect secret/envoy --dir ./certs -o json
  kubectl get secret envoy -o jsonpath='{.data.tls\\.crt}' | base64 -d | certrotate inspect -";

const CHECK_EXAMPLES: &str = "\
Examples:
  certrotate check --kube --warn-within 30d
  certrotate check --dir ./certs -o openmetrics > /var/lib/node-exporter/certrotate.prom
  certrotate check --kube --pushgateway http://pushgateway.monitoring:9091
  certrotate check --kube --pushgateway https://gw.example:9091 \\
      --pushgateway-bearer-token-file /run/secrets/pushgateway/token";

const SIMULATE_EXAMPLES: &str = "\
Examples:
  certrotate simulate
  certrotate simulate --strategy single-step   # the handshakes upstream's order breaks
  certrotate simulate --kube -o json";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  certrotate completions bash > /etc/bash_completion.d/certrotate
  certrotate completions zsh > \"${fpath[1]}/_certrotate\"
  certrotate completions fish > ~/.config/fish/completions/certrotate.fish";

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install, or with --overwrite rotate (with --adopt adopt), a control plane's certificates.
    #[command(after_help = ROTATE_EXAMPLES)]
    Rotate(RotateArgs),
    /// Show the persisted rotation phase, what the next run will do, and when.
    #[command(after_help = STATUS_EXAMPLES)]
    Status(StatusArgs),
    /// Re-issue leaves that expire soon, from the current CA (no trust change).
    #[command(after_help = RENEW_EXAMPLES)]
    Renew(RenewArgs),
    /// Apply the CA bundling rule to files: PEM to stdout, report to stderr (with -o json or
    /// yaml, one document with both on stdout).
    #[command(after_help = BUNDLE_EXAMPLES)]
    Bundle(BundleArgs),
    /// Show the certificates of a file, a folder, or a Secret (secret/NAME).
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Verify that every component's leaf is trusted by every peer and webhook, and that
    /// nothing expires soon.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Run a whole rotation in memory and print the trust matrix of every step: every
    /// leaf, before and after, against every bundle, before and after (exit 3 if a step
    /// breaks any combination). --dir or --kube start from what is there (read only).
    #[command(after_help = SIMULATE_EXAMPLES)]
    Simulate(crate::simulate::SimulateArgs),
    /// Print shell completions.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Where the Secrets are, and which profile. There is no default: `--dir` or a cluster flag
/// is required (exit 2 without one).
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Local mode: Secrets as folders DIR/NAMESPACE/NAME/KEY. Either this or a cluster
    /// (--kube, --context, --kubeconfig) is required.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["kube", "kubeconfig", "context"])]
    pub dir: Option<PathBuf>,
    /// Use the Kubernetes API (kubeconfig, or the in-cluster service account). Implied by
    /// --kubeconfig and --context. Either a cluster or --dir is required.
    #[arg(long)]
    pub kube: bool,
    /// The kubeconfig file (default: $KUBECONFIG, then ~/.kube/config); implies --kube.
    #[arg(long, value_name = "FILE", conflicts_with = "dir")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use; implies --kube.
    #[arg(long, value_name = "NAME", conflicts_with = "dir")]
    pub context: Option<String>,
    /// Namespace of the control plane (default: the profile's).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// `envoy-gateway`, `envoy-gateway-gateway-namespace` (proxies in each Gateway's
    /// namespace), or a profile file (.toml, .yaml).
    #[arg(long, default_value = "envoy-gateway")]
    pub profile: String,
    /// UNSAFE. Local mode: use DIR even if it, or a folder or file in it, belongs to
    /// another user or is writable by group or others. Whoever can write there chooses the
    /// CA that signs every leaf.
    #[arg(long, requires = "dir", conflicts_with_all = ["kube", "kubeconfig", "context"])]
    pub insecure_skip_dir_checks: bool,
    /// Local mode: how Secrets lie in DIR [default: kubelet].
    #[arg(long, value_enum, value_name = "LAYOUT", conflicts_with_all = ["kube", "kubeconfig", "context"])]
    pub layout: Option<Layout>,
    #[command(flatten)]
    pub limits: TimeLimits,
}

/// `--layout`: where local mode keeps each Secret beneath DIR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    /// DIR/NAMESPACE/NAME/KEY, as the kubelet mounts a Secret volume.
    Kubelet,
    /// DIR/NAME/KEY, the tree Envoy Gateway's standalone mode (hosts, no Kubernetes) reads:
    /// DIR is its <configHome>/certs (~/.config/envoy-gateway/certs); no namespace level,
    /// so -n is refused; the CA Secret is DIR/envoy-gateway-ca/.
    Standalone,
}

impl From<Layout> for certrotate_kube::DirLayout {
    fn from(layout: Layout) -> Self {
        match layout {
            Layout::Kubelet => Self::Kubelet,
            Layout::Standalone => Self::Standalone,
        }
    }
}

/// How long a run, and each of its requests to the API server, may take.
#[derive(Clone, Copy, Debug, Args)]
pub struct TimeLimits {
    /// Give up on one request to the Kubernetes API after this long, its whole answer
    /// included (a failed request is retried within each step's retry budget).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_nonzero_duration)]
    pub request_timeout: Duration,
    /// Give up on the whole run after this long, whatever it is doing (exit 6). Default:
    /// 1h for `rotate --wait`, 5m otherwise.
    #[arg(long, value_name = "DURATION", value_parser = parse_nonzero_duration)]
    pub timeout: Option<Duration>,
}

impl TimeLimits {
    /// The default `--timeout` of a run that sleeps through a whole rotation.
    pub const WAIT_DEFAULT: Duration = Duration::from_secs(3600);
    /// The default `--timeout` of every other run.
    pub const DEFAULT: Duration = Duration::from_secs(300);

    /// The limit of the whole run: `--timeout`, or the default for a run that waits or not.
    pub fn run_limit(&self, waits: bool) -> Duration {
        self.timeout.unwrap_or(if waits {
            Self::WAIT_DEFAULT
        } else {
            Self::DEFAULT
        })
    }
}

impl TargetArgs {
    /// The directory store's layout (`--layout`, the kubelet's by default).
    pub fn dir_layout(&self) -> certrotate_kube::DirLayout {
        self.layout.unwrap_or(Layout::Kubelet).into()
    }

    /// `-n` with `--layout standalone`: the standalone tree has no namespace level, and
    /// the namespace would only change the leaves' DNS names, silently.
    pub fn namespace_conflict(&self) -> Option<String> {
        let ns = self.namespace.as_ref()?;
        (self.layout == Some(Layout::Standalone)).then(|| {
            format!(
                "--namespace {ns}: --layout standalone has no namespace (Secrets are \
                 DIR/NAME/, as Envoy Gateway's standalone mode reads them); a namespace would \
                 only change the leaves' DNS names. Leave -n out, or set `namespace` in a \
                 --profile file if your standalone install uses another one"
            )
        })
    }

    /// Whether to use the Kubernetes API: `--kube`, `--kubeconfig` or `--context`.
    pub fn uses_kube(&self) -> bool {
        self.kube_flag().is_some()
    }

    /// The target's check: `--dir` or a cluster flag, or the usage error naming both.
    pub(crate) fn require(&self) -> Result<(), crate::UsageError> {
        if self.dir.is_some() || self.uses_kube() {
            Ok(())
        } else {
            Err(crate::target::no_target())
        }
    }

    /// The first flag given that needs the Kubernetes API (`--kube`, `--kubeconfig`,
    /// `--context`), for the error of a binary built without it.
    pub fn kube_flag(&self) -> Option<&'static str> {
        if self.kube {
            Some("--kube")
        } else if self.kubeconfig.is_some() {
            Some("--kubeconfig")
        } else if self.context.is_some() {
            Some("--context")
        } else {
            None
        }
    }
}

impl Command {
    /// How long the whole run may take (`--timeout`), for the commands that read or write
    /// Secrets; `None` for those that only read their arguments.
    pub fn run_limit(&self) -> Option<Duration> {
        match self {
            Command::Rotate(args) => Some(args.target.limits.run_limit(args.wait)),
            Command::Status(args) => Some(args.target.limits.run_limit(false)),
            Command::Renew(args) => Some(args.target.limits.run_limit(false)),
            Command::Inspect(args) => Some(args.target.limits.run_limit(false)),
            Command::Check(args) => Some(args.target.limits.run_limit(false)),
            Command::Simulate(args) => Some(args.limits.run_limit(false)),
            Command::Bundle(_) | Command::Completions { .. } => None,
        }
    }

    /// The target of a command that reads or writes Secrets (`inspect` only for a Secret;
    /// `simulate`'s is optional: a fresh install without one); `None` for the others.
    pub(crate) fn target(&self) -> Option<&TargetArgs> {
        match self {
            Command::Rotate(args) => Some(&args.target),
            Command::Status(args) => Some(&args.target),
            Command::Renew(args) => Some(&args.target),
            Command::Check(args) => Some(&args.target),
            Command::Inspect(args) => matches!(args.secret(), Ok(Some(_))).then_some(&args.target),
            Command::Simulate(_) | Command::Bundle(_) | Command::Completions { .. } => None,
        }
    }

    /// The first flag of this command line that only works on a cluster (`--kube`,
    /// `--kubeconfig`, `--context`, `--dry-run=server`), if any.
    pub fn kube_flag(&self) -> Option<&'static str> {
        match self {
            Command::Rotate(args) => args
                .target
                .kube_flag()
                .or((args.dry_run == Some(DryRun::Server)).then_some("--dry-run=server")),
            Command::Status(args) => args.target.kube_flag(),
            Command::Renew(args) => args.target.kube_flag(),
            Command::Inspect(args) => args.target.kube_flag(),
            Command::Check(args) => args.target.kube_flag(),
            Command::Simulate(args) => args.kube_flag(),
            Command::Bundle(_) | Command::Completions { .. } => None,
        }
    }
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub endpoints: EndpointArgs,
}

/// `--endpoint`: the TLS servers that load the component Secrets.
#[derive(Debug, Default, Args)]
pub struct EndpointArgs {
    /// A TLS server that serves a component Secret's leaf (and, if it verifies client
    /// certificates, trusts its ca.crt): SECRET=HOST:PORT, `[::1]:PORT` for IPv6;
    /// repeatable. `check` and `status` probe each with one handshake that sends no client
    /// certificate and show what it trusts (the CAs it asks client certificates from) and
    /// which CA issued the leaf it serves. A server that verifies no client certificate
    /// shows its leaf only; what TLS clients trust cannot be probed. The profile's own
    /// endpoints are probed too: with --kube every ready pod of its Services (found through
    /// their EndpointSlices; the built-in profile names Envoy Gateway's serving ports),
    /// with --dir its addresses.
    #[arg(long = "endpoint", value_name = "SECRET=HOST:PORT", value_parser = parse_endpoint)]
    pub endpoints: Vec<EndpointFlag>,
}

/// One `--endpoint SECRET=HOST:PORT`, checked for its form (the Secret against the
/// profile once it is loaded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointFlag {
    /// The component Secret's name.
    pub secret: String,
    /// `HOST:PORT` as given.
    pub address: String,
}

/// `--restart-command`: how start-only workloads restart on hosts (local mode).
#[derive(Debug, Default, Args)]
pub struct RestartArgs {
    /// Local mode: restart the profile's start-only workload WORKLOAD (its name in the
    /// profile: envoy-ratelimit) by running ARGV, split as a shell would split it but run
    /// without a shell (`envoy-ratelimit='systemctl restart envoy-ratelimit'`); repeatable.
    /// It runs when a Deployment would be restarted (after trust, after leaves); exit
    /// status 0 means restarted. A failure or a timeout is reported and holds the rotation:
    /// the next run runs it again. Its output goes to stderr.
    #[arg(
        long = "restart-command",
        value_name = "WORKLOAD=ARGV",
        value_parser = parse_restart_command,
        conflicts_with_all = ["kube", "kubeconfig", "context"],
    )]
    pub commands: Vec<RestartFlag>,
    /// The time limit of each --restart-command; past it, its process group is killed and
    /// the restart counts as failed.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_nonzero_duration)]
    pub restart_timeout: Duration,
}

/// One `--restart-command WORKLOAD=ARGV`, split into its argv (the workload is checked
/// against the profile once it is loaded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartFlag {
    /// The workload's name in the profile.
    pub workload: String,
    /// The program and its arguments.
    pub argv: Vec<String>,
}

pub(crate) fn parse_restart_command(s: &str) -> Result<RestartFlag, String> {
    let (workload, command) = s.split_once('=').ok_or(
        "expected WORKLOAD=ARGV (the profile's workload name, then the command that restarts it)",
    )?;
    certrotate_core::profile::validate_subdomain(workload)
        .map_err(|e| format!("not a workload name: {e}"))?;
    let argv =
        shlex::split(command).ok_or("the command has an unclosed quote or a trailing backslash")?;
    if argv.is_empty() {
        return Err(format!("{workload}=: the command is empty"));
    }
    Ok(RestartFlag {
        workload: workload.to_owned(),
        argv,
    })
}

/// `rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    #[command(flatten)]
    pub restarts: RestartArgs,
    #[command(flatten)]
    pub push: PushArgs,
    /// Rotate the CA (and adopt an install made without certrotate), once: the request names
    /// the CA current when the run starts, so repeating or racing it rotates once. Without
    /// it, only missing Secrets are created.
    #[arg(long)]
    pub overwrite: bool,
    /// The schedule: rotate the CA when it expires within DURATION (or when it is what
    /// keeps a leaf from its full validity); otherwise renew leaves expiring within it.
    /// A daily `rotate --rotate-ca-before 90d` is the whole lifecycle.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub rotate_ca_before: Option<Duration>,
    /// `staged`: trust, wait, leaves (no failed handshake); `single-step`: upstream's order.
    #[arg(long, default_value = "staged", value_parser = parse_strategy())]
    pub strategy: Strategy,
    /// Run to the end, sleeping through convergence intervals and rollouts (within
    /// --timeout, 1h by default). Without it, one run advances one phase and exits.
    #[arg(long)]
    pub wait: bool,
    /// How long every component gets to load a phase's writes [default: 5m]. A rotation
    /// keeps the interval it started with; with --force, this one replaces it. With
    /// --kube, less than 2m (the kubelet's 60 s sync plus its cache delay) is refused
    /// unless --strategy single-step or --allow-short-interval.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub convergence_interval: Option<Duration>,
    /// How long a phase may wait, from its start (the persisted phase-since, so
    /// one-step-a-run Jobs see it too), for every endpoint (--endpoint, and the profile's:
    /// its Services' ready pods with --kube, its addresses with --dir) to show what it
    /// wrote. Past it the run exits 6 naming each lagging endpoint and what it still
    /// shows; the phase stays where it is (it never advances without evidence).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub convergence_timeout: Option<Duration>,
    /// Accept a convergence interval under 2m with --kube: you know your kubelets sync
    /// Secrets faster (test and CI clusters).
    #[arg(long)]
    pub allow_short_interval: bool,
    /// Adopt an install made without certrotate (upstream's certgen: TLS Secrets, no CA
    /// Secret): mint a new CA and rotate to it, staged, carrying the existing ca.crt until
    /// the leaves switched. Does nothing on an install certrotate manages (unlike
    /// --overwrite, it never rotates a managed CA), so a Helm hook can pass it on every
    /// upgrade. Without it, such an install is only reported (a warning, an Event, exit 0)
    /// until a --rotate-ca-before window covers its CA's end.
    #[arg(long)]
    pub adopt: bool,
    /// Use a CA Secret that issued none of the install's leaves (refused by default:
    /// whoever can create Secrets in the namespace could have put it there). Pass it once
    /// if you created the CA Secret yourself. Not --adopt: that one is for an install with
    /// no CA Secret at all, and mints a new CA.
    #[arg(long)]
    pub trust_existing_ca: bool,
    /// Drop the old CA from every bundle, staged: after the leaves converged (with a
    /// rotation, for a leaked key), or now on a stable install that still carries one.
    #[arg(long)]
    pub drop_old_ca: bool,
    /// Retire the old CA from every bundle this long after a rotation ended (staged; at
    /// the latest 30 days before that CA expires). A rotation keeps the value it started
    /// with; --drop-old-ca retires at once.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_duration)]
    pub retire_after: Duration,
    /// Start a rotation even if the last one ended less than one interval ago.
    #[arg(long)]
    pub force: bool,
    /// Rotate the HMAC keys too (kept by default, so OIDC sessions survive).
    #[arg(long)]
    pub rotate_hmac: bool,
    /// Key algorithm of new CAs and leaves.
    #[arg(long, value_parser = parse_key_algorithm())]
    pub key_algorithm: Option<KeyAlgorithm>,
    /// Validity of a new CA (`5y`, `3650d`).
    #[arg(long, value_parser = parse_duration)]
    pub ca_validity: Option<Duration>,
    /// Validity of new leaves (`1y`, `90d`).
    #[arg(long, value_parser = parse_duration)]
    pub leaf_validity: Option<Duration>,
    /// How many old CAs a bundle carries (1, as upstream).
    #[arg(long, default_value_t = 1)]
    pub max_carried: usize,
    /// Print the plan and change nothing (`--dry-run=server`: the API server's dry run).
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: Option<DryRun>,
}

/// Dry-run kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    /// Plan locally and print the plan.
    Client,
    /// Send the writes with the API server's dry run (Kubernetes only).
    Server,
}

/// `renew`.
#[derive(Debug, Args)]
pub struct RenewArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub restarts: RestartArgs,
    #[command(flatten)]
    pub push: PushArgs,
    /// Re-issue leaves that expire within this long.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    pub before: Duration,
}

/// `bundle`.
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The new CA (PEM file, or - for stdin).
    pub new: PathBuf,
    /// The old ca.crt (PEM file, or - for stdin).
    pub old: PathBuf,
    /// The time at which expiry is judged (RFC 3339; default: now).
    #[arg(long, value_parser = parse_time)]
    pub now: Option<time::OffsetDateTime>,
    /// How many certificates of OLD to carry.
    #[arg(long, default_value_t = 1)]
    pub max_carried: usize,
}

/// `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A PEM file (- for stdin), a folder (searched for *.crt and *.pem), `secret/NAME`,
    /// or `secret` followed by NAME (as kubectl takes them).
    pub what: String,
    /// With `secret`: the Secret's name.
    pub name: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

impl InspectArgs {
    /// The Secret to inspect, for `secret/NAME` and `secret NAME` (`secrets` too); `None`
    /// for a file or folder. The name is checked as Kubernetes checks an object name
    /// before any request carries it in a URL (or local mode in a path).
    pub fn secret(&self) -> Result<Option<&str>, String> {
        let name = self.secret_name()?;
        if let Some(name) = name {
            certrotate_core::profile::validate_subdomain(name)
                .map_err(|e| format!("inspect: not a Secret name: {e}"))?;
        }
        Ok(name)
    }

    fn secret_name(&self) -> Result<Option<&str>, String> {
        let kind_and_name = self
            .what
            .split_once('/')
            .filter(|(kind, _)| matches!(*kind, "secret" | "secrets"));
        match (kind_and_name, self.what.as_str(), &self.name) {
            (Some((_, name)), _, None) if !name.is_empty() => Ok(Some(name)),
            (None, "secret" | "secrets", Some(name)) => Ok(Some(name)),
            (None, "secret" | "secrets", None) => {
                Err(format!("`inspect {}` needs the Secret's name", self.what))
            }
            (_, _, Some(name)) => Err(format!(
                "unexpected {name:?} after {:?}: give one FILE, DIR, secret/NAME or secret NAME",
                self.what
            )),
            (Some(_), _, None) => Err(format!("{:?}: no Secret name after the slash", self.what)),
            (None, _, None) => Ok(None),
        }
    }
}

/// `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    /// Fail (exit 4) if a certificate expires within this long.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    pub warn_within: Duration,
    #[command(flatten)]
    pub push: PushArgs,
}

/// Where a command pushes its metrics: `check` its checks, `rotate` and `renew` their own
/// outcome (also when they fail, so a failed rotation reaches monitoring).
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Also push metrics to this Pushgateway (`http[s]://HOST:PORT`, no user:password@ in
    /// it), replacing the group `job/JOB/namespace/NAMESPACE` (`check`: those of `-o
    /// openmetrics`) or `job/JOB/namespace/NAMESPACE/command/COMMAND` (`rotate`, `renew`:
    /// the run's outcome, also when it fails); for Jobs and CronJobs.
    #[arg(
        long,
        value_name = "URL",
        env = "CERTROTATE_PUSHGATEWAY",
        // `--help` would print the variable's value, which may hold a password.
        hide_env_values = true,
        value_parser = crate::pushgateway::PushgatewayParser
    )]
    pub pushgateway: Option<crate::Pushgateway>,
    /// The Pushgateway job name.
    #[arg(long, value_name = "JOB", default_value = crate::metrics::DEFAULT_JOB)]
    pub pushgateway_job: String,
    /// Send `Authorization: Bearer TOKEN` to the Pushgateway, TOKEN the one line of FILE
    /// (https://, or http:// to a loopback address only).
    #[arg(
        long,
        value_name = "FILE",
        requires = "pushgateway",
        conflicts_with = "pushgateway_basic_auth_file"
    )]
    pub pushgateway_bearer_token_file: Option<PathBuf>,
    /// Send HTTP basic authentication to the Pushgateway, FILE holding one line
    /// `USER:PASSWORD` (https://, or http:// to a loopback address only).
    #[arg(long, value_name = "FILE", requires = "pushgateway")]
    pub pushgateway_basic_auth_file: Option<PathBuf>,
    /// Trust only the CA certificates of this PEM file for an https:// Pushgateway
    /// (default: the system's roots).
    #[arg(long, value_name = "FILE", requires = "pushgateway")]
    pub pushgateway_ca_file: Option<PathBuf>,
    /// Give up the push (connecting, TLS, request and answer) after this long.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub pushgateway_timeout: Duration,
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    // A bare number is ambiguous on a command line (`--convergence-interval 5`: five
    // seconds or five minutes?); only 0 needs no unit. Persisted values and profiles still
    // read a bare number as seconds.
    if let Ok(n) = s.trim().parse::<u64>()
        && n != 0
    {
        return Err(format!("{s:?} has no unit: say {n}s, {n}m, {n}h or {n}d"));
    }
    certrotate_core::parse_duration(s).map_err(|e| e.to_string())
}

/// `--endpoint SECRET=HOST:PORT`: a Secret name, and a host (a DNS name, an IPv4 address,
/// or an IPv6 address in brackets) with a port from 1 to 65535. clap's error names the
/// flag and quotes the value typed.
pub(crate) fn parse_endpoint(s: &str) -> Result<EndpointFlag, String> {
    let (secret, address) = s
        .split_once('=')
        .ok_or("expected SECRET=HOST:PORT (the component Secret, then the server's address)")?;
    certrotate_core::profile::validate_subdomain(secret)
        .map_err(|e| format!("not a Secret name: {e}"))?;
    certrotate_core::profile::validate_endpoint_address(address)?;
    Ok(EndpointFlag {
        secret: secret.to_owned(),
        address: address.to_owned(),
    })
}

/// A duration that must not be zero (a time limit of nothing would fail every run).
pub(crate) fn parse_nonzero_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("{s:?}: must be longer than zero")),
        d => Ok(d),
    }
}

/// `--strategy`: its values are listed in help and completed by the shell.
pub(crate) fn parse_strategy() -> impl clap::builder::TypedValueParser<Value = Strategy> {
    clap::builder::PossibleValuesParser::new(["staged", "single-step"])
        .try_map(|s| s.parse::<Strategy>())
}

/// `--key-algorithm`: its values (`KeyAlgorithm::ALL`, spelled as in profiles) are listed
/// in help and completed by the shell.
pub(crate) fn parse_key_algorithm() -> impl clap::builder::TypedValueParser<Value = KeyAlgorithm> {
    clap::builder::PossibleValuesParser::new(KeyAlgorithm::ALL.map(KeyAlgorithm::as_str))
        .try_map(|s| s.parse::<KeyAlgorithm>())
}

/// `--now`: an RFC 3339 time, in UTC, within the years 0000 to 9999 there
/// (`9999-12-31T23:59:59-23:59` is year 10000 in UTC, which no later computation could
/// hold). clap's error names the flag and quotes the value typed.
pub(crate) fn parse_time(s: &str) -> Result<time::OffsetDateTime, String> {
    certrotate_core::parse_rfc3339(s).map_err(|e| e.to_string())
}
