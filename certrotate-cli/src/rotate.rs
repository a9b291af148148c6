//! `rotate` and `renew`: a run of the engine with the system clock (a countdown on a
//! terminal while it waits), its Kubernetes Events published as it goes, and its report.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result};
use certrotate_core::plan::{Next, Summary};
use certrotate_core::{Profile, RotationPolicy};
use certrotate_kube::{
    Clock, Engine, Error, Event, EventSink, Recording, RunEvents, RunMode, RunReport, Store,
    SystemClock,
};

use crate::cli::{self, Format};
use crate::escape::Esc;
use crate::target::Target;
use crate::{EXIT_CA_EXPIRES, activity, dry_run, output};

/// The Kubernetes client (`None` in local mode); none exists without the `kube` feature.
#[cfg(feature = "kube")]
pub(crate) type KubeClient = kube::Client;
#[cfg(not(feature = "kube"))]
pub(crate) type KubeClient = std::convert::Infallible;
/// Without the `kube` feature there is no cluster to record Events in.
#[cfg(not(feature = "kube"))]
pub(crate) type KubeEvents = std::convert::Infallible;
#[cfg(feature = "kube")]
pub(crate) use certrotate_kube::events::KubeEvents;

#[cfg(not(feature = "kube"))]
pub(crate) fn recorder(client: KubeClient) -> KubeEvents {
    client
}

/// Records Events on each profile's CA Secret, as this Pod (`POD_NAME`, from the downward
/// API in deploy/) or this host.
#[cfg(feature = "kube")]
pub(crate) fn recorder(client: KubeClient) -> KubeEvents {
    let instance = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .filter(|s| !s.is_empty());
    KubeEvents::new(client, instance)
}

/// The CLI's [`EventSink`]: what the run is doing (for the `--timeout` message), and the
/// Kubernetes Events of a cluster run.
struct CliEvents {
    kube: Option<Box<dyn EventSink>>,
}

impl CliEvents {
    fn new(kube: Option<KubeEvents>) -> Self {
        #[cfg(feature = "kube")]
        let kube = kube.map(|k| Box::new(k) as Box<dyn EventSink>);
        #[cfg(not(feature = "kube"))]
        let kube = kube.map(|never| match never {});
        Self { kube }
    }
}

impl EventSink for CliEvents {
    fn start(&self, profile: &Profile) -> Box<dyn RunEvents> {
        Box::new(CliRun {
            kube: self.kube.as_ref().map(|k| k.start(profile)),
        })
    }
}

struct CliRun {
    kube: Option<Box<dyn RunEvents>>,
}

impl RunEvents for CliRun {
    fn record<'a>(&'a mut self, event: &'a Event) -> Recording<'a> {
        if let Some(doing) = doing_after(event) {
            activity::doing(doing);
        }
        match &mut self.kube {
            Some(kube) => kube.record(event),
            None => Box::pin(std::future::ready(())),
        }
    }

    fn finish<'a>(&'a mut self, outcome: Result<&'a RunReport, &'a Error>) -> Recording<'a> {
        match &mut self.kube {
            Some(kube) => {
                activity::doing("recording Kubernetes Events on the CA Secret");
                kube.finish(outcome)
            }
            None => Box::pin(std::future::ready(())),
        }
    }
}

#[allow(clippy::too_many_arguments)] // the parts of one command line, each used once
pub(crate) async fn rotate<S: Store>(
    store: S,
    profile: Profile,
    policy: RotationPolicy,
    mode: RunMode,
    dry_run: Option<cli::DryRun>,
    format: Format,
    events: Option<KubeEvents>,
    target: &Target,
    facts: &std::sync::Mutex<crate::metrics::RunFacts>,
    probes: certrotate_kube::evidence::Probes,
) -> Result<ExitCode> {
    if dry_run == Some(cli::DryRun::Client) {
        let plans = dry_run::whole_run(&store, &profile, &policy, mode, SystemClock.now()).await?;
        output::plans(&plans, format, target)?;
        return Ok(ExitCode::SUCCESS);
    }
    activity::doing("reading the profile's objects and planning");
    // Events are recorded as the run goes (a `--wait` rotation takes many minutes, and a
    // run that fails keeps what it did before); a dry run records none.
    let kube = events.filter(|_| dry_run.is_none());
    let mut engine = Engine::new(store)
        .with_clock(ProgressClock::new())
        .with_event_sink(CliEvents::new(kube));
    if !probes.is_empty() {
        engine = engine.with_evidence(probes);
    }
    if let Some(kind) = dry_run {
        // Only the server's dry run remains here; a client dry run returned above.
        let plan = engine.plan(&profile, &policy).await?;
        if kind == cli::DryRun::Server {
            // The engine logs each write it makes; these the API server only checked, so
            // every line says so (`INFO server_dry_run: secret updated ...`).
            use tracing::Instrument as _;
            engine
                .apply(&profile, &plan)
                // The engine's target, so the span shows wherever its lines do.
                .instrument(tracing::info_span!(target: "certrotate_kube", "server_dry_run"))
                .await
                .context("the API server refused the dry run")?;
        }
        output::plan(&plan, format, target)?;
        return Ok(ExitCode::SUCCESS);
    }
    let result = engine.run(&profile, &policy, mode).await;
    let report = result?;
    if let Ok(mut f) = facts.lock() {
        f.phase = Some(report.phase);
        f.next_at = match report.next {
            Next::WaitUntil { at, .. } => Some(at),
            Next::Continue | Next::Done | Next::WaitForRollout { .. } => None,
        };
    }
    if let Summary::NotManaged { cas, .. } = &report.summary {
        // Loud on stderr whatever the output format: these certificates expire with
        // nobody to rotate them. Still exit 0: a Helm hook must never block an upgrade.
        let until = cas.first().map(|ca| format!("; {ca}")).unwrap_or_default();
        tracing::warn!(
            "{target}: not managed by certrotate (no CA Secret){}: run `certrotate rotate \
             --adopt`, or schedule --rotate-ca-before",
            Esc(until)
        );
    }
    output::run_report(&report, format, target)?;
    let code = match report.summary {
        Summary::CaExpiresFirst { .. } => EXIT_CA_EXPIRES,
        Summary::Installed { .. }
        | Summary::NotManaged { .. }
        | Summary::Adopting { .. }
        | Summary::TooSoon { .. }
        | Summary::Prepared { .. }
        | Summary::Renewed { .. }
        | Summary::CreatedMissing
        | Summary::UpToDate
        | Summary::Trust { .. }
        | Summary::Waiting { .. }
        | Summary::Repaired { .. }
        | Summary::TrustRestored { .. }
        | Summary::Leaves { .. }
        | Summary::Retire { .. }
        | Summary::Done { .. } => 0,
    };
    if let Ok(mut f) = facts.lock() {
        f.code = Some(code);
    }
    Ok(ExitCode::from(code))
}

/// What the run does after the engine reported `e` (for the `--timeout` error); `None`:
/// still what it was doing.
fn doing_after(e: &Event) -> Option<String> {
    match e {
        Event::Planned { summary, .. } => Some(format!("applying the plan \"{summary}\"")),
        Event::Conflict { object, .. } => Some(format!(
            "reading the profile's objects again after a conflict on {object}"
        )),
        Event::Waiting { until, reason } => Some(format!(
            "waiting until {} ({reason})",
            certrotate_core::rfc3339(*until)
        )),
        Event::WaitingForRollout { workloads } => {
            let names: Vec<String> = workloads.iter().map(ToString::to_string).collect();
            Some(format!("waiting for the rollout of {}", names.join(", ")))
        }
        Event::EndpointsLagging { lagging } => Some(format!(
            "waiting for {} endpoint(s) to show the phase's writes",
            lagging.len()
        )),
        Event::SecretCreated { .. }
        | Event::SecretUpdated { .. }
        | Event::SecretUnchanged { .. }
        | Event::WebhookUpdated { .. }
        | Event::WorkloadRestarted { .. }
        | Event::Note(_)
        | Event::EndpointsUndiscovered { .. }
        | Event::TrustAtRisk { .. } => None,
    }
}

/// The system clock, showing a countdown on a terminal while the engine waits for a phase
/// to converge (plain log lines say the same otherwise).
struct ProgressClock {
    terminal: bool,
}

impl ProgressClock {
    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
        }
    }
}

impl Clock for ProgressClock {
    fn now(&self) -> time::OffsetDateTime {
        SystemClock.now()
    }

    fn sleep_until(
        &self,
        at: time::OffsetDateTime,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        SystemClock.sleep_until(at)
    }

    fn wait_for(
        &self,
        at: time::OffsetDateTime,
        next: &Next,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        // After the wait the engine reads again: that is what a timeout then interrupts.
        let then_read = || activity::doing("reading the profile's objects and planning");
        if !self.terminal {
            let sleep = SystemClock.sleep_until(at);
            return Box::pin(async move {
                sleep.await;
                then_read();
            });
        }
        let total = (at - self.now()).whole_seconds().max(0) as u64;
        let bar = wait_bar(total, next, at);
        Box::pin(async move {
            while self.now() < at {
                let left = (at - self.now()).whole_seconds().max(0) as u64;
                bar.set_position(total.saturating_sub(left));
                tokio::time::sleep(
                    std::time::Duration::from_millis(250)
                        .min(std::time::Duration::try_from(at - self.now()).unwrap_or_default()),
                )
                .await;
            }
            bar.finish_and_clear();
            then_read();
        })
    }
}

/// The `--wait` progress line: the phase, a bar of fixed width, the seconds, then what it
/// waits for, cut to the terminal's width (`wide_msg`): at 80 columns the bar keeps its
/// 20 cells and the message keeps at least 30.
pub const WAIT_TEMPLATE: &str = "{spinner} {prefix:8} [{bar:20}] {pos:>4}/{len}s {wide_msg}";

/// The `--wait` progress bar for a wait of `total` seconds until `at` for `next` (drawn
/// on stderr; tests give it another draw target).
pub fn wait_bar(total: u64, next: &Next, at: time::OffsetDateTime) -> indicatif::ProgressBar {
    let (phase, what) = waiting_for(next);
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(WAIT_TEMPLATE)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_prefix(phase);
    bar.set_message(format!("{}; next step at {}", Esc(what), output::when(at)));
    bar
}

/// What the engine waits for, as (phase, what): `trust`, `bundles must converge before
/// leaves change`.
pub fn waiting_for(next: &Next) -> (String, String) {
    match next {
        Next::WaitUntil { reason, .. } => {
            let phase = match reason {
                certrotate_core::plan::WaitReason::Converging { phase }
                | certrotate_core::plan::WaitReason::Evidence { phase, .. } => phase.to_string(),
                certrotate_core::plan::WaitReason::TooSoon { .. } => "stable".to_owned(),
            };
            (phase, reason.to_string())
        }
        Next::WaitForRollout { workloads } => {
            let names: Vec<String> = workloads.iter().map(ToString::to_string).collect();
            (
                "rollout".to_owned(),
                format!("rollout of {}", names.join(", ")),
            )
        }
        Next::Continue | Next::Done => ("".to_owned(), "nothing".to_owned()),
    }
}
