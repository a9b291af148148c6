//! Issue 24, under traffic: a staged rotation gated on what the servers show ends with zero
//! failed handshakes while workload clients connect throughout, although one server loads
//! its certificates only at start (a `subPath` pod). The rotation holds at `trust` naming
//! that server, goes on as soon as it is restarted, holds at `leaves` until it is
//! restarted again, and ends. The same rotation gated by the timer alone fails handshakes:
//! the test sees the outage the evidence prevents.
//!
//! Servers and clients are the Go peer (`test-support/tlspeer`, crypto/tls as in Envoy
//! Gateway): the clients re-read their files for every connection (as Envoy reloads SDS
//! files), one server re-reads per handshake (as the controller's xDS servers do), the
//! other read them once. Only the workload clients' handshakes are counted: a probe sends
//! no client certificate, so servers refuse it by design.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use certrotate_controlplane::go_peer::{self, Server};

mod support;
use support::{Run, run};

const NS: &str = "envoy-gateway-system";

/// What a workload client counted.
#[derive(Debug, Default)]
struct Tally {
    attempts: u64,
    failed: u64,
    errors: Vec<String>,
}

/// A workload: a client connecting again and again to one server with the `envoy` Secret's
/// files (re-read per connection), until stopped. Paused while its server restarts (a
/// refused connection to a pod being replaced is not a handshake).
struct Workload {
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    thread: Option<JoinHandle<()>>,
}

impl Workload {
    fn start(tlspeer: &Path, addr: String, dir: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let thread = {
            let (stop, paused, tally) = (stop.clone(), paused.clone(), tally.clone());
            let tlspeer = tlspeer.to_owned();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if paused.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    let (_, summary) =
                        go_peer::connect(&tlspeer, &addr, "envoy-gateway", &dir, 5).unwrap();
                    let mut t = tally.lock().unwrap();
                    t.attempts += summary["attempts"].as_u64().unwrap();
                    t.failed += summary["failed"].as_u64().unwrap();
                    if let Some(errors) = summary["errors"].as_object() {
                        t.errors.extend(errors.keys().cloned());
                    }
                }
            })
        };
        Self {
            stop,
            paused,
            tally,
            thread: Some(thread),
        }
    }

    /// Pauses, waiting for the connections under way to end.
    fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        // A batch is five connections of a few milliseconds each.
        std::thread::sleep(Duration::from_millis(500));
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    fn finish(mut self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        std::mem::take(&mut *self.tally.lock().unwrap())
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One rotation step of the binary (no `--wait`: each run advances at most one phase).
fn rotate(dir: &str, endpoints: &[String], overwrite: bool) -> Run {
    let mut args = vec!["rotate", "--dir", dir, "--convergence-interval", "1s"];
    if overwrite {
        args.push("--overwrite");
    }
    for e in endpoints {
        args.extend(["--endpoint", e.as_str()]);
    }
    let r = run(&args);
    assert_eq!(r.code, 0, "{args:?}\n{}\n{}", r.stdout, r.stderr);
    r
}

fn phase(dir: &str) -> String {
    let status = run(&["status", "--dir", dir]).stdout;
    status
        .lines()
        .find_map(|l| l.trim().strip_prefix("phase:"))
        .map(|p| p.split_whitespace().next().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// Runs steps until the phase is `want`, at most `runs` runs, a little over the interval
/// apart; returns the output of every run.
fn until_phase(dir: &str, endpoints: &[String], want: &str, runs: usize) -> Vec<Run> {
    let mut out = Vec::new();
    for _ in 0..runs {
        if phase(dir) == want {
            return out;
        }
        out.push(rotate(dir, endpoints, false));
        std::thread::sleep(Duration::from_millis(1200));
    }
    assert_eq!(phase(dir), want, "after {runs} runs");
    out
}

/// Runs `runs` steps, each past the interval: the phase must stay `held`, each run naming
/// `addr` as lagging.
fn held(dir: &str, endpoints: &[String], held: &str, addr: &str, runs: usize) {
    for _ in 0..runs {
        std::thread::sleep(Duration::from_millis(1200));
        let r = rotate(dir, endpoints, false);
        assert_eq!(phase(dir), held, "{}\n{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains("lagging:") && r.stdout.contains(addr),
            "the run names the server it waits for:\n{}",
            r.stdout
        );
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    dir: String,
    controller: PathBuf,
    proxy: PathBuf,
}

fn install() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let dir_s = dir.to_str().unwrap().to_owned();
    assert_eq!(run(&["rotate", "--dir", &dir_s]).code, 0);
    Setup {
        controller: dir.join(NS).join("envoy-gateway"),
        proxy: dir.join(NS).join("envoy"),
        dir: dir_s,
        _tmp: tmp,
    }
}

#[test]
fn a_rotation_gated_on_evidence_fails_no_handshake_under_traffic() {
    let Some(tlspeer) = certrotate_controlplane::tlspeer() else {
        return;
    };
    let s = install();
    let reloading = Server::start_quiet(&tlspeer, &s.controller).unwrap();
    let stuck = Server::start_once(&tlspeer, &s.controller, "127.0.0.1:0").unwrap();
    let stuck_addr = stuck.addr.clone();
    let to_reloading = Workload::start(&tlspeer, reloading.addr.clone(), s.proxy.clone());
    let to_stuck = Workload::start(&tlspeer, stuck_addr.clone(), s.proxy.clone());
    let endpoints = [
        format!("envoy-gateway={}", reloading.addr),
        format!("envoy-gateway={stuck_addr}"),
    ];
    // The pod restarted: the old process gone (it listens on the same port), then the
    // new one, which reads the files as they are now.
    let restart = |stuck: &mut Option<Server>| {
        to_stuck.pause();
        drop(stuck.take());
        let mut started = Server::start_once(&tlspeer, &s.controller, &stuck_addr);
        for _ in 0..10 {
            if started.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
            started = Server::start_once(&tlspeer, &s.controller, &stuck_addr);
        }
        *stuck = Some(started.unwrap());
        to_stuck.resume();
    };
    let mut stuck = Some(stuck);

    rotate(&s.dir, &endpoints, true);
    until_phase(&s.dir, &endpoints, "trust", 8);
    // The interval passes again and again: the stuck server does not list the next CA.
    held(&s.dir, &endpoints, "trust", &stuck_addr, 3);
    restart(&mut stuck);
    until_phase(&s.dir, &endpoints, "leaves", 8);
    // It still serves the old CA's leaf.
    held(&s.dir, &endpoints, "leaves", &stuck_addr, 2);
    restart(&mut stuck);
    until_phase(&s.dir, &endpoints, "stable", 8);
    // A little more traffic on the final state.
    std::thread::sleep(Duration::from_millis(500));

    let stuck_tally = to_stuck.finish();
    let reloading_tally = to_reloading.finish();
    eprintln!(
        "workload handshakes: to the reloading server {} ({} failed), to the start-only one \
         {} ({} failed)",
        reloading_tally.attempts, reloading_tally.failed, stuck_tally.attempts, stuck_tally.failed
    );
    for (name, t) in [
        ("reloading", &reloading_tally),
        ("start-only", &stuck_tally),
    ] {
        assert!(t.attempts >= 50, "{name}: only {} handshakes", t.attempts);
        assert_eq!(t.failed, 0, "{name}: {:?}", t.errors);
    }
    drop(reloading);
    drop(stuck);
}

/// The control: the same rotation and traffic, gated by the timer alone (no `--endpoint`),
/// switches the leaves while the start-only server trusts only the old CA, and the
/// workload's handshakes to it fail. (This is the outage the evidence prevents; if it did
/// not happen here, the test above would prove nothing.)
#[test]
fn the_same_rotation_gated_by_the_timer_alone_fails_handshakes() {
    let Some(tlspeer) = certrotate_controlplane::tlspeer() else {
        return;
    };
    let s = install();
    let stuck = Server::start_once(&tlspeer, &s.controller, "127.0.0.1:0").unwrap();
    let to_stuck = Workload::start(&tlspeer, stuck.addr.clone(), s.proxy.clone());
    rotate(&s.dir, &[], true);
    until_phase(&s.dir, &[], "stable", 12);
    std::thread::sleep(Duration::from_millis(500));
    let tally = to_stuck.finish();
    assert!(tally.failed > 0, "no handshake failed: {tally:?}");
    assert!(
        tally
            .errors
            .iter()
            .any(|e| e.contains("certificate") || e.contains("tls")),
        "{tally:?}"
    );
    drop(stuck);
}
