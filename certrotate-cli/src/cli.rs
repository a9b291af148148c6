//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use certrotate_core::KeyAlgorithm;
use certrotate_core::plan::Strategy;
use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_STATUS: &str = "\
EXIT STATUS:
  0  success, including a rotation that advanced a phase or found it too early to advance
     (the output says when the next step may run)
  1  failure: bad input, a file or API error; the message names the object
  2  usage error
  3  check: a leaf is not trusted by a peer, or a Secret or key is missing;
     simulate: a combination of some step is not trusted
  4  check: a certificate expires within --warn-within";

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
    /// The command.
    #[command(subcommand)]
    pub command: Command,
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

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install, or with --overwrite rotate, a control plane's certificates.
    Rotate(RotateArgs),
    /// Show the persisted rotation phase, what the next run will do, and when.
    Status(TargetArgs),
    /// Re-issue leaves that expire soon, from the current CA (no trust change).
    Renew(RenewArgs),
    /// Apply the CA bundling rule to files: PEM to stdout, report to stderr.
    Bundle(BundleArgs),
    /// Show the certificates of a file, a folder, or a Secret (secret/NAME).
    Inspect(InspectArgs),
    /// Verify that every component's leaf is trusted by every peer and webhook, and that
    /// nothing expires soon.
    Check(CheckArgs),
    /// Run a whole rotation in memory and print the trust matrix of every step: every
    /// leaf, before and after, against every bundle, before and after (exit 3 if any
    /// combination fails). --dir or --kube start from what is there (read only).
    Simulate(crate::simulate::SimulateArgs),
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Where the Secrets are, and which profile.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Local mode: Secrets as folders DIR/NAMESPACE/NAME/KEY (the default, in ./certs).
    #[arg(long, value_name = "DIR", conflicts_with = "kube")]
    pub dir: Option<PathBuf>,
    /// Use the Kubernetes API (kubeconfig, or the in-cluster service account).
    #[arg(long)]
    pub kube: bool,
    /// Kubeconfig context.
    #[arg(long, requires = "kube")]
    pub context: Option<String>,
    /// Namespace of the control plane (default: the profile's).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// `envoy-gateway`, or a profile file (.toml, .yaml).
    #[arg(long, default_value = "envoy-gateway")]
    pub profile: String,
    /// UNSAFE. Local mode: use DIR even if it, or a folder or file in it, belongs to
    /// another user or is writable by group or others. Whoever can write there chooses the
    /// CA that signs every leaf.
    #[arg(long, conflicts_with = "kube")]
    pub insecure_skip_dir_checks: bool,
}

/// `rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub target: TargetArgs,
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
    /// `staged` (trust, wait, leaves: no failed handshake) or `single-step` (upstream's).
    #[arg(long, default_value = "staged", value_parser = parse_strategy)]
    pub strategy: Strategy,
    /// Run to the end, sleeping through convergence intervals and rollouts. Without it,
    /// one run advances one phase and exits.
    #[arg(long)]
    pub wait: bool,
    /// With --wait, give up after this long.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How long every component gets to load a phase's writes (0 for local mode and tests).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub convergence_interval: Duration,
    /// After the leaves converged, drop the old CA from every bundle (for a leaked key).
    #[arg(long)]
    pub drop_old_ca: bool,
    /// Start a rotation even if the last one ended less than one interval ago.
    #[arg(long)]
    pub force: bool,
    /// Rotate the HMAC keys too (kept by default, so OIDC sessions survive).
    #[arg(long)]
    pub rotate_hmac: bool,
    /// Key algorithm of new CAs and leaves.
    #[arg(long, value_parser = parse_key_algorithm)]
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
    /// A PEM file, a folder (searched for *.crt and *.pem), or secret/NAME.
    pub what: String,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Fail (exit 4) if a certificate expires within this long.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    pub warn_within: Duration,
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    certrotate_core::parse_duration(s).map_err(|e| e.to_string())
}

pub(crate) fn parse_strategy(s: &str) -> Result<Strategy, String> {
    s.parse().map_err(|e: certrotate_core::Error| e.to_string())
}

pub(crate) fn parse_key_algorithm(s: &str) -> Result<KeyAlgorithm, String> {
    s.parse().map_err(|e: certrotate_core::Error| e.to_string())
}

pub(crate) fn parse_time(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))
}
