//! Batches of the directory store: the order of their fills, syncs and swaps (what makes
//! them durable in order), and a kill at every point of every batch of a rotation.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certrotate_core::plan::wire::{KEY_CA_CRT, KEY_TLS_CRT};
use certrotate_core::plan::{Next, ObjectRef, Observed};
use certrotate_core::{
    Origin, Profile, RotationPolicy, SeededEntropy, Trigger, check, verify_chain,
};
use time::OffsetDateTime;
use time::macros::datetime;

use super::DirStore;
use crate::{Clock, Engine, ManualClock, RunMode, observe};

const NS: &str = "envoy-gateway-system";
const T0: OffsetDateTime = datetime!(2026-06-01 0:00 UTC);

/// Records the points of each batch (`fill NS/NAME ..vN`, `sync`, `swap NS/NAME`,
/// `fsync NS/NAME`, `finish NS/NAME`, `sync`) and may stop a batch at the Nth point, as a
/// kill would: it unwinds (without a panic message), so nothing after the point runs, and
/// the lock is released as the kernel releases a killed process's.
#[derive(Debug, Default)]
pub(super) struct Probe {
    trace: Mutex<Vec<String>>,
    kill_at: Option<usize>,
}

/// What a kill unwinds with.
struct Killed;

impl Probe {
    fn kill_at(n: usize) -> Arc<Self> {
        Arc::new(Self {
            kill_at: Some(n),
            ..Self::default()
        })
    }

    pub(super) fn at(&self, point: String) {
        let n = {
            let mut trace = self.trace.lock().unwrap();
            trace.push(point);
            trace.len()
        };
        if self.kill_at == Some(n) {
            std::panic::resume_unwind(Box::new(Killed));
        }
    }

    fn trace(&self) -> Vec<String> {
        self.trace.lock().unwrap().clone()
    }
}

impl DirStore {
    fn probed(&self, probe: &Arc<Probe>) -> Self {
        let mut store = self.clone();
        store.probe = Some(Arc::clone(probe));
        store
    }
}

fn profile() -> Profile {
    Profile::envoy_gateway(NS)
}

fn options(overwrite: bool) -> RotationPolicy {
    let mut o = RotationPolicy::default();
    if overwrite {
        o.trigger = Trigger::Always;
    }
    o.convergence_interval = Duration::from_secs(300);
    o
}

fn engine(
    store: DirStore,
    clock: &Arc<ManualClock>,
    seed: u64,
) -> Engine<DirStore, Arc<ManualClock>> {
    Engine::new(store)
        .with_clock(Arc::clone(clock))
        .with_entropy(SeededEntropy::new(seed))
}

fn until_done() -> RunMode {
    RunMode::UntilDone {
        timeout: Duration::from_secs(24 * 3600),
    }
}

/// On tmpfs where there is one: a kill leaves the page cache as it was, so these tests
/// check the order of the renames; the order of the syncs is checked from the trace.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    match shm.is_dir() {
        true => tempfile::tempdir_in(shm).or_else(|_| tempfile::tempdir()),
        false => tempfile::tempdir(),
    }
    .unwrap()
}

/// A fresh DIR with the profile installed (one run, no overwrite), an hour ago.
async fn installed() -> (tempfile::TempDir, DirStore, Arc<ManualClock>) {
    let tmp = scratch();
    let store = DirStore::new(tmp.path());
    let clock = Arc::new(ManualClock::new(T0));
    engine(store.clone(), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(3600));
    (tmp, store, clock)
}

/// The trace cut into batches, each checked against the only order the durability
/// argument allows: every fill, one sync, then per Secret in batch order its swap, the
/// fsync that makes it durable and the rest of the write, then one sync. Returns each
/// batch's Secrets and new versions; a batch cut short (by a kill) is returned as far as
/// it got, with where it starts in the trace.
fn batches(trace: &[String]) -> Vec<(usize, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = trace;
    while !rest.is_empty() {
        let start = trace.len() - rest.len();
        let fills: Vec<(String, String)> = rest
            .iter()
            .map_while(|p| p.strip_prefix("fill "))
            .map(|p| {
                let (secret, version) = p.rsplit_once(' ').unwrap();
                (secret.to_owned(), version.to_owned())
            })
            .collect();
        assert!(!fills.is_empty(), "a batch starts with its fills: {rest:?}");
        let mut expected: Vec<String> =
            fills.iter().map(|(s, v)| format!("fill {s} {v}")).collect();
        expected.push("sync".to_owned());
        for (s, _) in &fills {
            expected.extend([
                format!("swap {s}"),
                format!("fsync {s}"),
                format!("finish {s}"),
            ]);
        }
        expected.push("sync".to_owned());
        let n = expected.len().min(rest.len());
        assert_eq!(rest[..n], expected[..n], "the order of a batch");
        rest = &rest[n..];
        out.push((start, fills));
    }
    out
}

/// Every leaf trusted by every peer's `ca.crt`, at `now`.
fn assert_trusted(observed: &Observed, now: OffsetDateTime, context: &str) {
    let report = check(&profile(), observed, now, Duration::ZERO).unwrap();
    let bad: Vec<String> = report
        .untrusted()
        .map(|p| format!("{} not trusted by {}", p.leaf, p.trusted_by))
        .chain(report.problems.iter().cloned())
        .collect();
    assert!(bad.is_empty(), "{context}: {bad:#?}");
}

/// The version `..data` names in a Secret's folder; `None` if it has none.
fn current(dir: &Path, secret: &str) -> Option<String> {
    let link = dir.join(secret).join("..data");
    std::fs::read_link(link)
        .ok()
        .map(|t| t.to_str().unwrap().to_owned())
}

/// Every Secret folder under `dir` holds only the version `..data` names.
fn assert_no_leftovers(dir: &Path, context: &str) {
    let ns = dir.join(NS);
    for secret in std::fs::read_dir(&ns).unwrap() {
        let secret = secret.unwrap().path();
        let current = std::fs::read_link(secret.join("..data")).unwrap();
        for entry in std::fs::read_dir(&secret).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let leftover =
                (name.starts_with("..v") && Path::new(&name) != current) || name.ends_with("_tmp");
            assert!(!leftover, "{context}: {name} left in {}", secret.display());
        }
    }
}

/// The install is one batch of the five Secrets; in a rotation the CA Secret (the phase
/// record) is the last write of its batch (in local mode a step's component writes and its
/// CA write are two batches: the restart step between them is a no-op note here, but a
/// step of its own); and in every batch the fills come first,
/// then one sync, then the swaps in order, each made durable before the next, then one
/// sync: 2 syncfs + 1 fsync per Secret, where a Secret alone used to take about 6 fsyncs.
#[tokio::test]
async fn a_batch_syncs_its_fills_once_then_swaps_in_order_each_durable_before_the_next() {
    let tmp = scratch();
    let store = DirStore::new(tmp.path());
    let clock = Arc::new(ManualClock::new(T0));
    let probe = Arc::new(Probe::default());
    engine(store.probed(&probe), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    let install: Vec<_> = batches(&probe.trace()).into_iter().map(|b| b.1).collect();
    let secrets: Vec<&str> = install[0].iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(install.len(), 1, "{install:?}");
    assert_eq!(
        secrets,
        [
            "envoy-gateway-system/envoy-oidc-hmac",
            "envoy-gateway-system/envoy-gateway-ca",
            "envoy-gateway-system/envoy-gateway",
            "envoy-gateway-system/envoy",
            "envoy-gateway-system/envoy-rate-limit",
        ],
        "the install's writes in plan order"
    );
    let syncs = |trace: &[String]| {
        let count = |what: &str| trace.iter().filter(|p| p.starts_with(what)).count();
        (count("sync"), count("fsync"))
    };
    assert_eq!(syncs(&probe.trace()), (2, 5), "install: 2 syncfs, 5 fsyncs");

    clock.advance(Duration::from_secs(3600));
    let probe = Arc::new(Probe::default());
    engine(store.probed(&probe), &clock, 2)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap();
    let trace = probe.trace();
    let rotation: Vec<_> = batches(&trace).into_iter().map(|b| b.1).collect();
    assert!(rotation.len() >= 3, "{rotation:?}");
    for batch in &rotation {
        let ca = batch
            .iter()
            .position(|(s, _)| s == "envoy-gateway-system/envoy-gateway-ca");
        assert!(
            ca.is_none_or(|at| at == batch.len() - 1),
            "the phase record is the last write of its batch: {batch:?}"
        );
    }
    let writes: usize = rotation.iter().map(Vec::len).sum();
    assert_eq!(syncs(&trace), (2 * rotation.len(), writes));
    println!(
        "batches: install 1 of 5 Secrets; rotation {} of {:?} Secrets; syncs per batch: 2 syncfs + one fsync per Secret",
        rotation.len(),
        rotation.iter().map(Vec::len).collect::<Vec<_>>()
    );
}

/// A rotation killed at every point of every batch in turn (after a fill, after the sync
/// of the fills, after a swap, after its fsync, after the rest of a write, after the last
/// sync): every Secret reads whole, old or new; the new ones are exactly the ones swapped
/// before the kill, the first ones of the batch; every leaf is trusted; and a rerun (another
/// seed) finishes on the CA minted before the kill, leaving no version folder behind.
#[tokio::test]
async fn a_kill_at_any_point_of_a_batch_leaves_its_first_writes_and_a_rerun_finishes() {
    let total = {
        let (_tmp, store, clock) = installed().await;
        let probe = Arc::new(Probe::default());
        engine(store.probed(&probe), &clock, 2)
            .run(&profile(), &options(true), until_done())
            .await
            .unwrap();
        probe.trace().len()
    };
    let mut mid_batch = 0;
    for k in 1..=total {
        let context = format!("killed at point {k} of {total}");
        let (tmp, store, clock) = installed().await;
        let probe = Probe::kill_at(k);
        let killed_engine = engine(store.probed(&probe), &clock, 2);
        let killed = tokio::spawn(async move {
            killed_engine
                .run(&profile(), &options(true), until_done())
                .await
        })
        .await;
        assert!(killed.is_err_and(|e| e.is_panic()), "{context}: not killed");

        // The batch the kill cut short: its Secrets swapped in are its first ones, and
        // each Secret is at its new version or the one before.
        let trace = probe.trace();
        let (start, cut) = batches(&trace).pop().unwrap();
        let swapped = trace[start..]
            .iter()
            .filter(|p| p.starts_with("swap "))
            .count();
        let dir = tmp.path();
        for (i, (secret, new)) in cut.iter().enumerate() {
            let name = secret.rsplit_once('/').unwrap().1;
            let at = current(&dir.join(NS), name);
            let number: u64 = new.strip_prefix("..v").unwrap().parse().unwrap();
            let old = (number > 1).then(|| format!("..v{}", number - 1));
            if i < swapped {
                assert_eq!(at.as_ref(), Some(new), "{context}: {secret} is new");
            } else {
                assert_eq!(at, old, "{context}: {secret} is old");
            }
        }
        if swapped > 0 && swapped < cut.len() {
            mid_batch += 1;
        }
        let crashed = observe(&store, &profile()).await.unwrap();
        assert_trusted(&crashed, clock.now(), &context);
        let ca = ObjectRef::new(NS, "envoy-gateway-ca");
        let next_at_kill = crashed.secrets[&ca].data.get("next-ca.crt").cloned();

        let report = engine(store.clone(), &clock, 3)
            .run(&profile(), &options(true), until_done())
            .await
            .unwrap();
        assert_eq!(report.next, Next::Done, "{context}: the rerun finished");
        store.tidy().unwrap();
        assert_no_leftovers(dir, &context);
        let done = observe(&store, &profile()).await.unwrap();
        assert_trusted(&done, clock.now(), &format!("{context}, then rerun"));
        let ca_pem = done.secrets[&ca].data[KEY_CA_CRT].clone();
        if let Some(next) = next_at_kill {
            assert_eq!(
                ca_pem, next,
                "{context}: the rerun kept the CA minted before"
            );
        }
        for c in ["envoy-gateway", "envoy", "envoy-rate-limit"] {
            let leaf = &done.secrets[&ObjectRef::new(NS, c)].data[KEY_TLS_CRT];
            let o = Origin::new("t");
            assert!(
                verify_chain(leaf, &o, &ca_pem, &o, clock.now())
                    .unwrap()
                    .is_trusted(),
                "{context}: {c} on the new CA"
            );
        }
    }
    assert!(mid_batch > 0, "some kills landed between two swaps");
    println!(
        "kills inside batches: {total} points, {mid_batch} between two swaps of one batch; every Secret old or new, the new ones first, trust intact, every rerun finished"
    );
}

fn write(secret: &str, expected_version: Option<&str>, value: &str) -> crate::SecretWrite {
    let secret = ObjectRef::new(NS, secret);
    let data = [("tls.crt".to_owned(), value.as_bytes().to_vec())].into();
    match expected_version {
        None => crate::SecretWrite::Create {
            secret,
            new: crate::NewSecret {
                secret_type: "Opaque".to_owned(),
                data,
                ..crate::NewSecret::default()
            },
        },
        Some(v) => crate::SecretWrite::Update {
            secret,
            expected_version: v.to_owned(),
            update: crate::SecretUpdate {
                data: data.into_iter().map(|(k, v)| (k, Some(v))).collect(),
                ..crate::SecretUpdate::default()
            },
        },
    }
}

async fn value(store: &DirStore, secret: &str) -> Option<(String, Vec<u8>)> {
    use crate::SecretStore as _;
    let read = store
        .read_secret(&ObjectRef::new(NS, secret))
        .await
        .unwrap();
    read.map(|s| (s.version, s.data["tls.crt"].clone()))
}

/// A batch stops at its first failure, as separate writes would: the writes before a
/// conflict are made (and answered), the conflicting one and those after it are not, and
/// nothing is left behind but the current versions.
#[tokio::test]
async fn a_conflict_in_a_batch_keeps_the_writes_before_it_and_none_after() {
    use crate::SecretStore as _;
    let tmp = scratch();
    let store = DirStore::new(tmp.path());
    let results = store
        .write_secrets(&[write("a", None, "a1"), write("b", None, "b1")])
        .await;
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let results = store
        .write_secrets(&[
            write("a", Some("1"), "a2"),
            write("b", Some("7"), "b2"),
            write("c", None, "c1"),
        ])
        .await;
    assert_eq!(results.len(), 2, "stops at the conflict: {results:?}");
    assert_eq!(results[0].as_ref().unwrap(), "2");
    assert!(matches!(results[1], Err(crate::StoreError::Conflict)));
    assert_eq!(value(&store, "a").await, Some(("2".into(), b"a2".to_vec())));
    assert_eq!(value(&store, "b").await, Some(("1".into(), b"b1".to_vec())));
    assert_eq!(value(&store, "c").await, None);
    assert_no_leftovers(tmp.path(), "after a conflict");

    // A create of a Secret that exists, first in a batch: nothing is written.
    let results = store
        .write_secrets(&[write("a", None, "again"), write("c", None, "c1")])
        .await;
    assert_eq!(results.len(), 1);
    assert!(matches!(results[0], Err(crate::StoreError::AlreadyExists)));
    assert_eq!(value(&store, "c").await, None);
}

/// A Secret named twice in one batch: the second write names the version the first one
/// made, as it would after a separate call, and both are made in order.
#[tokio::test]
async fn a_secret_named_twice_in_a_batch_is_written_twice_in_order() {
    use crate::SecretStore as _;
    let tmp = scratch();
    let store = DirStore::new(tmp.path());
    let results = store
        .write_secrets(&[
            write("a", None, "a1"),
            write("b", None, "b1"),
            write("a", Some("1"), "a2"),
        ])
        .await;
    let versions: Vec<String> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(versions, ["1", "1", "2"]);
    assert_eq!(value(&store, "a").await, Some(("2".into(), b"a2".to_vec())));
    assert_no_leftovers(tmp.path(), "after a Secret written twice");

    // Its second write planned from the version before the batch conflicts, as it would.
    let results = store
        .write_secrets(&[write("a", Some("2"), "a3"), write("a", Some("2"), "a4")])
        .await;
    assert!(results[0].is_ok() && matches!(results[1], Err(crate::StoreError::Conflict)));
    assert_eq!(value(&store, "a").await, Some(("3".into(), b"a3".to_vec())));
}
