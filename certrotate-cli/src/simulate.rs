//! `certrotate simulate`: a whole rotation in memory, printed as a trust matrix per step.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[cfg(feature = "kube")]
use anyhow::Context;
use anyhow::{Result, bail};
use certrotate_core::RotationPolicy;
use certrotate_core::plan::Strategy;
use certrotate_core::trust::{Outcome, PairCheck, TrustStore};
use certrotate_core::{BundlePolicy, KeyAlgorithm};
#[cfg(feature = "kube")]
use certrotate_kube::KubeStore;
use certrotate_kube::simulate::{
    Ending, ReloadModel, SimulateOptions, Simulation, Start, simulate,
};
use certrotate_kube::{Clock, DirStore, SystemClock, observe};
use clap::Args;
use tracing::instrument::WithSubscriber as _;

use crate::cli::{self, Format, parse_duration, parse_key_algorithm, parse_strategy, parse_time};
use crate::escape::{Esc, escape_control};
use crate::profiles::load_profile;
use crate::target::{Place, Target};
use crate::{EXIT_UNTRUSTED, output};

/// `simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Start from the Secrets in DIR (local mode) instead of a fresh install.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["kube", "kubeconfig", "context"])]
    pub dir: Option<PathBuf>,
    /// Start from the objects in the cluster (read only) instead of a fresh install.
    /// Implied by --kubeconfig and --context.
    #[arg(long)]
    pub kube: bool,
    /// The kubeconfig file (default: $KUBECONFIG, then ~/.kube/config); implies --kube.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use; implies --kube.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace of the control plane (default: the profile's).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// `envoy-gateway`, or a profile file (.toml, .yaml).
    #[arg(long, default_value = "envoy-gateway")]
    pub profile: String,
    /// With --dir: how Secrets lie in DIR [default: kubelet].
    #[arg(long, value_enum, value_name = "LAYOUT", conflicts_with_all = ["kube", "context"])]
    pub layout: Option<cli::Layout>,
    /// `staged` or `single-step`.
    #[arg(long, default_value = "staged", value_parser = parse_strategy())]
    pub strategy: Strategy,
    /// The convergence interval (simulated: waits cost nothing).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub convergence_interval: Duration,
    /// After the leaves converged, drop the old CA from every bundle.
    #[arg(long)]
    pub drop_old_ca: bool,
    /// Rotate the HMAC keys too.
    #[arg(long)]
    pub rotate_hmac: bool,
    /// How many old CAs a bundle carries.
    #[arg(long, default_value_t = 1)]
    pub max_carried: usize,
    /// Key algorithm of new CAs and leaves.
    #[arg(long, value_parser = parse_key_algorithm())]
    pub key_algorithm: Option<KeyAlgorithm>,
    /// Validity of a new CA.
    #[arg(long, value_parser = parse_duration)]
    pub ca_validity: Option<Duration>,
    /// Validity of new leaves.
    #[arg(long, value_parser = parse_duration)]
    pub leaf_validity: Option<Duration>,
    /// When the simulation starts (RFC 3339; default: now).
    #[arg(long, value_parser = parse_time)]
    pub now: Option<time::OffsetDateTime>,
    /// Seed of the simulated keys and serials.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A component Secret whose server never sees an update (a `subPath` mount, a stuck
    /// kubelet): it keeps the files it had when the rotation started, and each step's
    /// matrix checks those (repeatable).
    #[arg(long, value_name = "SECRET")]
    pub never_reloads: Vec<String>,
    /// Apply the evidence rule: each endpoint the profile names is a simulated server
    /// (verifying clients with the ca.crt it loaded, presenting its leaf), and a phase
    /// waits until every one shows what it wrote. A server that never reloads then holds
    /// the rotation (exit 6) instead of breaking pairs.
    #[arg(long)]
    pub evidence: bool,
    /// With --evidence: more simulated servers (SECRET=HOST:PORT, repeatable), each serving
    /// its component Secret's files as loaded, as `rotate --endpoint` would probe them.
    #[command(flatten)]
    pub endpoints: cli::EndpointArgs,
    #[command(flatten)]
    pub limits: cli::TimeLimits,
}

impl SimulateArgs {
    /// `--kube`, `--kubeconfig` or `--context`, for the error of a binary built without
    /// Kubernetes support.
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

/// Runs `simulate`: exit 0 when no step breaks any combination, 3 otherwise.
pub(crate) async fn run(args: SimulateArgs, format: Format) -> Result<ExitCode> {
    let target = cli::TargetArgs {
        dir: args.dir.clone(),
        kube: args.kube,
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespace: args.namespace.clone(),
        profile: args.profile.clone(),
        // Reading an observed DIR is held to the same ownership checks as any other run.
        insecure_skip_dir_checks: false,
        layout: args.layout,
        limits: args.limits,
    };
    let profile = load_profile(&target, |p| {
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
    let (start, from) = if let Some(_flag) = args.kube_flag() {
        #[cfg(not(feature = "kube"))]
        return Err(crate::without_kube(_flag).into());
        #[cfg(feature = "kube")]
        {
            crate::activity::doing("connecting to the Kubernetes API");
            let limits = certrotate_kube::ClientLimits::default()
                .with_request_timeout(args.limits.request_timeout);
            let store = KubeStore::connect_with(
                args.kubeconfig.as_deref(),
                args.context.as_deref(),
                limits,
            )
            .await
            .context("connecting to Kubernetes (kubeconfig or in-cluster)")?;
            let target = Target::new(Place::kube(&store), &profile.namespace);
            crate::activity::doing("reading the profile's objects");
            let observed = observe(&store, &profile)
                .await
                .with_context(|| format!("on {}", target.place))?;
            (Start::Observed(observed), Some(target))
        }
    } else if let Some(dir) = &args.dir {
        if !dir.is_dir() {
            bail!("--dir {}: not a folder", dir.display());
        }
        let store = DirStore::new(dir.clone()).with_layout(target.dir_layout());
        (
            Start::Observed(observe(&store, &profile).await?),
            Some(Target::new(
                Place::local(dir)
                    .with_standalone(target.dir_layout() == certrotate_kube::DirLayout::Standalone),
                &profile.namespace,
            )),
        )
    } else {
        (Start::Fresh, None)
    };
    let mut plan = RotationPolicy::default();
    plan.strategy = args.strategy;
    plan.convergence_interval = args.convergence_interval;
    plan.drop_old_ca = args.drop_old_ca;
    plan.rotate_hmac = args.rotate_hmac;
    plan.bundle_policy = BundlePolicy::new(args.max_carried);
    let now = args.now.unwrap_or_else(|| {
        let now = SystemClock.now();
        now.replace_nanosecond(0).unwrap_or(now)
    });
    let mut options = SimulateOptions::new(plan, now);
    options.seed = args.seed;
    // The built-in profile's control plane is known: its connections are checked as its
    // processes load their files (upstream's reload rules).
    if crate::BUILT_IN_PROFILES.contains(&args.profile.as_str()) {
        options = options.with_reload(ReloadModel::envoy_gateway());
    }
    let modelled = options.reload.is_some();
    for name in &args.never_reloads {
        if let Err(reason) = profile.component(name) {
            return Err(crate::UsageError(format!(
                "--never-reloads {}: {}",
                Esc(name),
                Esc(&reason)
            ))
            .into());
        }
    }
    options.never_reloads = args.never_reloads.clone();
    options.evidence = args.evidence;
    options.endpoints = crate::endpoints(&profile, &args.endpoints)?;
    if !options.endpoints.is_empty() && !args.evidence {
        return Err(crate::UsageError(
            "--endpoint: simulated servers are for the evidence rule; add --evidence".into(),
        )
        .into());
    }
    if args.evidence
        && options.endpoints.is_empty()
        && profile.components.iter().all(|c| c.endpoints.is_empty())
    {
        return Err(crate::UsageError(format!(
            "--evidence: profile {} names no endpoint (a component's `endpoints`): there \
             is no server to simulate",
            Esc(&profile.name)
        ))
        .into());
    }

    // The engine's events are about the in-memory store: the matrix says what matters.
    let simulation = simulate(&profile, start, &options)
        .with_subscriber(tracing::subscriber::NoSubscriber::default())
        .await?;
    // The target it started from (none for a fresh install), in JSON as `target`.
    #[derive(serde::Serialize)]
    struct Document<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<&'a Target>,
        #[serde(flatten)]
        simulation: &'a Simulation,
    }
    let document = Document {
        target: from.as_ref(),
        simulation: &simulation,
    };
    if let Some(text) = output::data(&document, format)? {
        output::print(&text)?;
    } else {
        let from = match &from {
            Some(target) => target.to_string(),
            None => "a fresh install".to_owned(),
        };
        output::print(&human(&simulation, &from, modelled)?)?;
    }
    Ok(match simulation.ending {
        Ending::Done if simulation.passed() => ExitCode::SUCCESS,
        Ending::Failed { error } => bail!("the simulated rotation failed: {error}"),
        Ending::Done | Ending::Refused => ExitCode::from(EXIT_UNTRUSTED),
        // Held by the evidence rule: a real run waits, and exits 6 past
        // --convergence-timeout (a pair a step broke on the way still says 3).
        Ending::Held { .. } if simulation.failures().next().is_some() => {
            ExitCode::from(EXIT_UNTRUSTED)
        }
        Ending::Held { .. } => ExitCode::from(crate::EXIT_TIMEOUT),
    })
}

/// The matrix for a terminal: per step, one row per (leaf, trust store) with OK or each
/// failing combination and why.
fn human(simulation: &Simulation, from: &str, modelled: bool) -> Result<String> {
    let mut s = String::new();
    writeln!(
        s,
        "simulated rotation of profile {} ({}) from {}",
        Esc(&simulation.profile),
        simulation.strategy,
        Esc(from)
    )?;
    let mut combinations = 0;
    let mut failed = 0;
    let mut already = 0;
    for step in &simulation.steps {
        writeln!(s)?;
        writeln!(
            s,
            "step {}: {} -> {} at {}{}: {}",
            step.index,
            step.from,
            step.to,
            certrotate_core::rfc3339(step.at),
            if step.refused {
                " (REFUSED by the trust gate)"
            } else {
                ""
            },
            Esc(&step.summary)
        )?;
        // One row per (leaf, store), in the order of the report (profile order).
        let mut rows: Vec<(String, String, Vec<&PairCheck>)> = Vec::new();
        for check in &step.trust.checks {
            let store = store_name(&check.trusted_by);
            let leaf = escape_control(&check.leaf.name).into_owned();
            match rows.iter_mut().find(|(l, t, _)| *l == leaf && *t == store) {
                Some((_, _, checks)) => checks.push(check),
                None => rows.push((leaf, store, vec![check])),
            }
        }
        // Padded by count, not by a `{:width$}` format (which panics past 65,535).
        let leaf_width = rows
            .iter()
            .map(|r| r.0.chars().count())
            .max()
            .unwrap_or(0)
            .max(7);
        let store_width = rows
            .iter()
            .map(|r| r.1.chars().count())
            .max()
            .unwrap_or(0)
            .max(10);
        writeln!(
            s,
            "  {}  {}  RESULT",
            output::pad("LEAF OF", leaf_width),
            output::pad("TRUSTED BY", store_width)
        )?;
        for (leaf, store, checks) in &rows {
            combinations += checks.len();
            let describe = |c: &&PairCheck| match &c.outcome {
                Outcome::Trusted { .. } => None,
                Outcome::Failed { reason } => Some(format!(
                    "leaf {} / store {}: {}",
                    c.leaf_side,
                    c.store_side,
                    Esc(reason)
                )),
            };
            let failures: Vec<String> = checks
                .iter()
                .filter(|c| c.breaks_trust())
                .filter_map(describe)
                .collect();
            let before: Vec<String> = checks
                .iter()
                .filter(|c| !c.breaks_trust())
                .filter_map(describe)
                .collect();
            failed += failures.len();
            already += before.len();
            let result = match (failures.is_empty(), before.is_empty()) {
                (true, true) => match checks.len() {
                    1 => "OK".to_owned(),
                    n => format!("OK ({n} combinations)"),
                },
                (true, false) => format!("ok (already failing: {})", before.join("; ")),
                (false, _) => format!("FAIL {}", failures.join("; ")),
            };
            writeln!(
                s,
                "  {}  {}  {result}",
                output::pad(leaf, leaf_width),
                output::pad(store, store_width)
            )?;
        }
        for broken in &step.connections {
            let side = if broken.server_leaf {
                "the server's leaf"
            } else {
                "the client's leaf"
            };
            let workload = broken
                .workload
                .as_ref()
                .map(|w| format!(" ({} as it loaded at start)", Esc(w)))
                .unwrap_or_default();
            writeln!(
                s,
                "  connection {}{workload}: FAIL {side}: {}",
                Esc(&broken.connection),
                Esc(&broken.reason)
            )?;
        }
    }
    writeln!(s)?;
    let ending = match &simulation.ending {
        Ending::Done => "the rotation finished".to_owned(),
        Ending::Refused => "the trust gate refused the last step".to_owned(),
        Ending::Held { phase, lagging } => {
            let mut held = format!(
                "the evidence rule holds the rotation at {phase}: {} server(s) do not show \
                 what it wrote (a run waits for them; past --convergence-timeout it exits 6)",
                lagging.len()
            );
            for l in lagging {
                held.push_str(&format!("\n  lagging: {}", Esc(l)));
            }
            held
        }
        Ending::Failed { error } => format!("the engine failed: {}", Esc(error)),
    };
    let already = if already > 0 {
        format!(" ({already} already failing before their step)")
    } else {
        String::new()
    };
    let connections = if modelled {
        format!(
            ", {} broken connections under the control plane's reload rules",
            simulation.broken_connections().count()
        )
    } else {
        String::new()
    };
    writeln!(
        s,
        "{} steps, {combinations} combinations, {failed} failed{already}{connections}; {ending}",
        simulation.steps.len()
    )?;
    Ok(s)
}

fn store_name(store: &TrustStore) -> String {
    match store {
        TrustStore::Component { secret } => format!("{} ca.crt", Esc(&secret.name)),
        TrustStore::Webhook { webhook, index } => {
            format!("{} #{index} caBundle", Esc(&webhook.name))
        }
    }
}
