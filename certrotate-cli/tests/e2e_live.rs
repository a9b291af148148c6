//! Envoy Gateway's real components rotated live (issue 23 item 4), in standalone (host)
//! mode on 127.0.0.1: upstream's controller (`envoy-gateway server`, v1.9.0) and rate limit
//! (`github.com/envoyproxy/ratelimit` at the version v1.9.0's go.mod requires), with Redis,
//! reading the tree `certrotate rotate --layout standalone` writes, while workload clients
//! connect over and over through a whole rotation and count every failed handshake.
//!
//! The clients, each as the component it stands for loads its files:
//! - `envoy→xds` (port 18000): Envoy's `xds_cluster`, with the `envoy` leaf and `ca.crt`
//!   through path-based SDS, reloaded when the folder's `..data` link moves: the files are
//!   read on every attempt.
//! - `ratelimit→xds` (port 18001): the rate limit's xDS client, with the `envoy-rate-limit`
//!   leaf and `ca.crt`, built once at start (ratelimit `src/provider/
//!   xds_grpc_sotw_provider.go`): read at start, and again when the rate limit restarts.
//! - `envoy→ratelimit` (the rate limit's gRPC port): Envoy's rate-limit cluster, which trusts
//!   a static `trusted_ca.filename = /certs/ca.crt` (the `envoy` Secret's) that Envoy never
//!   reloads (gateway `internal/xds/translator/globalresources.go`, `buildEnvoyClientTLSSocket`):
//!   read at start, and again when the proxies restart. Envoy itself is not run: host mode
//!   launches it through func-e, which downloads it, and there is no network here; this client
//!   is its reload rule. Like Envoy there, it verifies the chain and no name.
//!
//! The start-only components restart as a host restarts them: `certrotate rotate
//! --restart-command WORKLOAD=ARGV`, whose ARGV files a request the test serves
//! ([`RestartDoor`]) and exits 0 once it is done. The real rate limit is rolled (a new
//! process beside the old, on the same ports, the old killed once the new one's xDS client
//! connected to the controller with the files of that moment); the models restart with it.
//!
//! The controller's ports are fixed upstream (18000-18002, 8081, 19001): the harness holds
//! a machine-wide file lock while one runs, so these tests run one at a time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use certrotate_controlplane::handshake::{ClientSpec, Reload, Tally, Workloads};
use certrotate_controlplane::host::{
    self, CONTROLLER_SERVER_NAME, HostBinaries, HostControlPlane, RATE_LIMIT_XDS_PORT, RestartDoor,
    XDS_PORT,
};
use certrotate_core::Profile;
use certrotate_core::profile::{WorkloadKind, WorkloadSpec};

mod support;
use support::{Run, run};

/// The namespace the standalone tree's leaves are named for (the profile's default).
const NAMESPACE: &str = "envoy-gateway-system";
/// The rate limit's workload in the built-in profile.
const RATE_LIMIT: &str = "envoy-ratelimit";
/// The workload this test's staged profile adds for the Envoy proxies (issue 23 item 5
/// adds them to the built-in profile, selected by label; standalone mode has no cluster
/// objects, so the name only marks the restart).
const PROXIES: &str = "envoy-proxies";
/// Each phase's convergence interval: long enough for the rate limit to restart and its
/// xDS client to connect.
const INTERVAL: &str = "3s";
/// How long each phase is watched after its run, at least (the interval, and a margin).
const WATCH: Duration = Duration::from_millis(3_500);
/// The bound of every wait for handshakes.
const WAIT: Duration = Duration::from_secs(60);
/// Envoy Gateway's own xDS servers, which verify client certificates against `ca.crt`
/// re-read per handshake (upstream's fixed ports in standalone mode): the staged rotation
/// probes them for evidence (issue 24), so its phases advance on what the real controller
/// shows, not on the timer alone.
const CONTROLLER_ENDPOINTS: [&str; 2] = [
    "envoy-gateway=127.0.0.1:18000",
    "envoy-gateway=127.0.0.1:18001",
];

fn endpoint_args() -> Vec<String> {
    CONTROLLER_ENDPOINTS
        .iter()
        .flat_map(|e| ["--endpoint".to_owned(), (*e).to_owned()])
        .collect()
}

/// Runs `certrotate ARGS` off the async runtime; panics unless it exits 0.
async fn certrotate(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(&args);
        assert_eq!(
            r.code, 0,
            "{args:?}\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        r
    })
    .await
    .unwrap()
}

/// The phase a run left the install in (`... ; phase trust`).
fn phase(out: &str) -> String {
    out.lines()
        .find_map(|l| l.rsplit_once("; phase ").map(|(_, p)| p.trim().to_owned()))
        .unwrap_or_else(|| panic!("no phase in:\n{out}"))
}

/// The built-in profile, with the Envoy proxies restarted too (what upstream's reload rules
/// need: a proxy trusts the rate limit through a static `trusted_ca`), as a profile file.
fn profile_with_proxies(dir: &Path) -> String {
    let profile = Profile::envoy_gateway(NAMESPACE)
        .with_workload(WorkloadSpec::new(WorkloadKind::Deployment, PROXIES));
    let path = dir.join("envoy-gateway-with-proxies.yaml");
    // JSON is YAML: the loader reads it as such.
    std::fs::write(&path, serde_json::to_string_pretty(&profile).unwrap()).unwrap();
    path.display().to_string()
}

/// The three workload clients, running, their first attempts in phase `0 stable`.
fn start_clients(cp: &HostControlPlane) -> Workloads {
    let certs = cp.certs();
    let mut w = Workloads::new();
    w.set_phase("0 stable");
    w.spawn(ClientSpec {
        name: "envoy→xds".into(),
        addr: ([127, 0, 0, 1], XDS_PORT).into(),
        // Envoy's xds_cluster matches this SAN exactly.
        server_name: "envoy-gateway".into(),
        check_name: true,
        trust: certs.join("envoy"),
        identity: Some(certs.join("envoy")),
        reload: Reload::EachAttempt,
    });
    w.spawn(ClientSpec {
        name: "ratelimit→xds".into(),
        addr: ([127, 0, 0, 1], RATE_LIMIT_XDS_PORT).into(),
        server_name: CONTROLLER_SERVER_NAME.into(),
        check_name: true,
        trust: certs.join("envoy-rate-limit"),
        identity: Some(certs.join("envoy-rate-limit")),
        reload: Reload::AtStart,
    });
    w.spawn(ClientSpec {
        name: "envoy→ratelimit".into(),
        addr: cp.rate_limit_grpc(),
        server_name: format!("envoy-ratelimit.{NAMESPACE}.svc.cluster.local"),
        // Envoy's rate-limit cluster matches no name (the leaf's `*.NAMESPACE` would not
        // cover the Service's name anyway): the chain only.
        check_name: false,
        trust: certs.join("envoy"),
        identity: None,
        reload: Reload::AtStart,
    });
    w
}

/// Runs `certrotate ARGS` (exit 0 required) while serving the restarts its
/// `--restart-command`s ask through `door`: the real rate limit (rolled) and its xDS
/// client's model, or the proxies' model. Returns the run and what it restarted, in order.
async fn rotate(
    args: Vec<String>,
    door: &RestartDoor,
    cp: &mut HostControlPlane,
    w: &Workloads,
) -> (Run, Vec<String>) {
    let run = certrotate(args);
    tokio::pin!(run);
    let mut restarted = Vec::new();
    loop {
        tokio::select! {
            r = &mut run => return (r, restarted),
            () = tokio::time::sleep(Duration::from_millis(50)) => {
                for (id, workload) in door.pending() {
                    match workload.as_str() {
                        RATE_LIMIT => {
                            cp.restart_rate_limit().await.unwrap();
                            w.restart("ratelimit→xds");
                        }
                        PROXIES => w.restart("envoy→ratelimit"),
                        other => panic!("a restart of {other}, which no client stands for"),
                    }
                    door.done(&id).unwrap();
                    restarted.push(workload);
                }
            }
        }
    }
}

/// One line per client: accepted and failed handshakes, per phase, and the first failures.
fn report(title: &str, tallies: &[Tally], cp: &HostControlPlane, took: Duration) -> String {
    let mut s = format!(
        "{title}: {:.1}s, the rate limit started {} times\n",
        took.as_secs_f64(),
        cp.rate_limit_starts()
    );
    for t in tallies {
        let _ = writeln!(
            s,
            "  {:<16} {:>5} accepted, {:>4} failed, {:>3} unreachable, {} restarts; accepted by phase {:?}; failed by phase {:?}",
            t.name, t.ok, t.failed, t.unreachable, t.restarts, t.ok_by_phase, t.failed_by_phase
        );
        if let Some(f) = t.failures.first() {
            let _ = writeln!(s, "    first failure ({}): {}", f.phase, f.error);
        }
        if let Some(e) = &t.last_unreachable {
            let _ = writeln!(s, "    last unreachable: {e}");
        }
    }
    s
}

/// Written past libtest's capture, so the counts show in every run's output.
fn say(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn rotate_args(dir: &str, profile: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "rotate",
        "--dir",
        dir,
        "--layout",
        "standalone",
        "--profile",
        profile,
    ];
    args.extend_from_slice(extra);
    args.into_iter().map(str::to_owned).collect()
}

/// `--restart-command` for each of `workloads`, through `door`.
fn restart_commands(door: &RestartDoor, workloads: &[&str]) -> Vec<String> {
    workloads
        .iter()
        .flat_map(|w| ["--restart-command".to_owned(), door.command(w)])
        .collect()
}

/// A staged rotation (trust, leaves, stable, retire, stable), the start-only components
/// restarted by `--restart-command` when the CLI runs it: no workload client fails a single
/// handshake, and each made handshakes in every phase. The real rate limit rolled after
/// `trust`, `leaves` and `retire`, its xDS client connected to the controller each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_rotation_of_the_real_components_fails_no_handshake() {
    let Some(bins) = HostBinaries::locate() else {
        return;
    };
    #[allow(clippy::disallowed_methods)] // a live test's run time is what it reports
    let start = std::time::Instant::now();
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("certs").display().to_string();
    let profile = profile_with_proxies(home.path());
    let door = RestartDoor::new(home.path()).unwrap();
    let restarts = restart_commands(&door, &[RATE_LIMIT, PROXIES]);
    certrotate(rotate_args(&dir, &profile, &[])).await;

    let mut cp = HostControlPlane::start(&bins, home.path()).await.unwrap();
    let w = start_clients(&cp);
    w.wait_accepted(5, WAIT).await.unwrap();

    let mut first = vec![
        "--overwrite",
        "--convergence-interval",
        INTERVAL,
        "--retire-after",
        "1s",
    ];
    let mut phases = Vec::new();
    for n in 1..=8 {
        w.set_phase(&format!("{n} rotate running"));
        let mut args = rotate_args(&dir, &profile, &first);
        args.extend(restarts.iter().cloned());
        args.extend(endpoint_args());
        first.clear();
        let (r, restarted) = rotate(args, &door, &mut cp, &w).await;
        let phase = phase(&r.stdout);
        if phase == "trust" {
            // The real controller, probed: both xDS servers already list the next CA
            // (first) beside the current one in their CertificateRequest.
            let mut args = vec![
                "status".to_owned(),
                "--dir".to_owned(),
                dir.clone(),
                "--layout".to_owned(),
                "standalone".to_owned(),
                "--profile".to_owned(),
                profile.clone(),
            ];
            args.extend(endpoint_args());
            let status = certrotate(args).await.stdout;
            let trusts: Vec<&str> = status
                .lines()
                .filter(|l| l.trim_start().starts_with("trusts:"))
                .collect();
            assert_eq!(trusts.len(), 2, "one line per xDS server:\n{status}");
            for line in trusts {
                let next = line.find("(next)").unwrap_or_else(|| panic!("{status}"));
                let current = line.find("(current)").unwrap_or_else(|| panic!("{status}"));
                assert!(next < current, "{line}\n{status}");
            }
        }
        w.set_phase(&format!("{n} {phase}"));
        w.wait_accepted(3, WAIT).await.unwrap();
        tokio::time::sleep(WATCH).await;
        cp.check_alive().unwrap();
        let done = r.stdout.contains("old CA retired");
        phases.push((phase, restarted));
        if done {
            break;
        }
    }
    let tallies = w.stop().await;
    let text = report("staged rotation, live", &tallies, &cp, start.elapsed());
    say(&text);

    let both = || vec![RATE_LIMIT.to_owned(), PROXIES.to_owned()];
    assert_eq!(
        phases,
        [
            ("trust".to_owned(), both()),
            ("leaves".to_owned(), both()),
            ("stable".to_owned(), vec![]),
            ("retire".to_owned(), both()),
            ("stable".to_owned(), vec![]),
        ],
        "the phases, and what each restarted\n{text}"
    );
    for t in &tallies {
        assert_eq!(t.failed, 0, "{}: failed handshakes\n{text}", t.name);
        for phase in [
            "0 stable", "1 trust", "2 leaves", "3 stable", "4 retire", "5 stable",
        ] {
            assert!(
                t.ok_by_phase.get(phase).is_some_and(|&n| n > 0),
                "{}: no handshake in phase {phase}\n{text}",
                t.name
            );
        }
    }
    // The real rate limit: started once and rolled three times, its xDS client connected
    // to the controller each time.
    assert_eq!(cp.rate_limit_starts(), 4, "{text}");
    for n in 1..=4 {
        assert!(
            cp.log(&format!("ratelimit-{n}"))
                .contains(host::RATE_LIMIT_XDS_CONNECTED),
            "run {n} of the rate limit\n{text}"
        );
    }
}

/// Upstream's order, as the PRs would ship it (#8534: the bundle `[new, previous]` written
/// with the new leaves in one update; #8535: the rate limit restarted after it, here by
/// `--restart-command`; the built-in profile, which restarts no proxy): the proxies' static
/// `trusted_ca` refuses the rate limit's new certificate as soon as it hot-reloads it, and
/// keeps refusing it. (The other two links may fail too while the step is written, folder
/// after folder: a client whose bundle is not yet swapped meets a server whose leaf is, and
/// the rate limit's xDS client fails until its restart. How often is timing; the report
/// says.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_step_order_breaks_the_proxies_link_to_the_rate_limit() {
    let Some(bins) = HostBinaries::locate() else {
        return;
    };
    #[allow(clippy::disallowed_methods)] // a live test's run time is what it reports
    let start = std::time::Instant::now();
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("certs").display().to_string();
    let door = RestartDoor::new(home.path()).unwrap();
    certrotate(rotate_args(&dir, "envoy-gateway", &[])).await;

    let mut cp = HostControlPlane::start(&bins, home.path()).await.unwrap();
    let w = start_clients(&cp);
    w.wait_accepted(5, WAIT).await.unwrap();

    w.set_phase("1 rotate running");
    let mut args = rotate_args(
        &dir,
        "envoy-gateway",
        &[
            "--overwrite",
            "--strategy",
            "single-step",
            "--convergence-interval",
            INTERVAL,
        ],
    );
    args.extend(restart_commands(&door, &[RATE_LIMIT]));
    let (r, restarted) = rotate(args, &door, &mut cp, &w).await;
    assert_eq!(phase(&r.stdout), "stable", "{}", r.stdout);
    assert_eq!(restarted, [RATE_LIMIT], "{}", r.stdout);
    w.set_phase("2 rotation over");
    tokio::time::sleep(WATCH).await;
    cp.check_alive().unwrap();
    let tallies = w.stop().await;
    let text = report("single-step rotation, live", &tallies, &cp, start.elapsed());
    say(&text);

    let by_name = |name: &str| tallies.iter().find(|t| t.name == name).unwrap();
    let proxy = by_name("envoy→ratelimit");
    assert!(proxy.failed > 0, "the proxies' static trust held?\n{text}");
    assert!(
        proxy.failed_by_phase.contains_key("2 rotation over"),
        "still failing once the rotation is over\n{text}"
    );
    assert!(
        proxy
            .failures
            .iter()
            .all(|f| f.error.contains("UnknownIssuer")),
        "{text}"
    );
    // The real rate limit, rolled after the step, trusts the new CA and connects.
    assert!(
        cp.log("ratelimit-2")
            .contains(host::RATE_LIMIT_XDS_CONNECTED),
        "{text}"
    );
}
