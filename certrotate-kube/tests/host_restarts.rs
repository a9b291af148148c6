//! Restart commands on hosts (`host::HostRestarts`): a staged rotation runs the rate
//! limit's command after `trust` and after `leaves`; a command that fails, times out or is
//! interrupted holds the rotation and runs again on the next run; what it records in its
//! folder is read back; a hostile record is refused without echoing it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod contract;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use certrotate_core::plan::{ObjectRef, Phase, WorkloadRef};
use certrotate_core::profile::WorkloadKind;
use certrotate_kube::host::{HostRestarts, RECORD_SECRET, RestartCommand};
use certrotate_kube::{
    Clock, DirLayout, DirStore, ManualClock, MemoryStore, RunMode, SecretStore, Store,
    WorkloadStore, observe,
};
use contract::*;

/// A restart command: appends its workload and the rate limit's leaf and bundle to `log`,
/// then exits with the status in `status` (0 if that file is absent).
struct Script {
    dir: tempfile::TempDir,
}

impl Script {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    fn fail_with(&self, status: Option<i32>) {
        let path = self.dir.path().join("status");
        match status {
            Some(s) => std::fs::write(path, s.to_string()).unwrap(),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    fn calls(&self) -> usize {
        std::fs::read_to_string(self.log())
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    fn command(&self, timeout: Duration) -> RestartCommand {
        let d = self.dir.path().display();
        let script = format!(
            "echo \"$CERTROTATE_WORKLOAD_KIND/$CERTROTATE_WORKLOAD\" >> {d}/log; \
             if [ -f {d}/status ]; then exit $(cat {d}/status); fi"
        );
        RestartCommand::new(vec!["sh".into(), "-c".into(), script], timeout).unwrap()
    }

    fn commands(&self) -> BTreeMap<String, RestartCommand> {
        BTreeMap::from([(
            "envoy-ratelimit".to_owned(),
            self.command(Duration::from_secs(30)),
        )])
    }
}

/// A memory store whose rate limit restarts by running `argv` within `timeout`.
fn running(argv: Vec<String>, timeout: Duration) -> HostRestarts<MemoryStore> {
    let command = RestartCommand::new(argv, timeout).unwrap();
    HostRestarts::new(
        MemoryStore::new(),
        BTreeMap::from([("envoy-ratelimit".to_owned(), command)]),
    )
}

fn ratelimit() -> WorkloadRef {
    WorkloadRef::new(WorkloadKind::Deployment, NS, "envoy-ratelimit")
}

async fn phase<S: Store>(store: &S) -> Phase {
    state(store).await.phase
}

/// Runs once; the error's chain if it failed.
async fn run_once<S: Store + Clone>(
    store: &S,
    clock: &Arc<ManualClock>,
    overwrite: bool,
) -> Result<Phase, String> {
    engine(store.clone(), clock, 7)
        .run(&profile(), &options(overwrite), RunMode::Once)
        .await
        .map(|r| r.phase)
        .map_err(|e| chain(&e))
}

#[tokio::test]
async fn a_staged_rotation_restarts_after_trust_and_after_leaves() {
    let script = Script::new();
    let store = Arc::new(HostRestarts::new(MemoryStore::new(), script.commands()));
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    assert_eq!(script.calls(), 0, "an install restarts nothing");
    engine(store.clone(), &clock, 2)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap();
    assert_eq!(phase(&store).await, Phase::Stable);
    assert_eq!(
        std::fs::read_to_string(script.log()).unwrap(),
        "deployment/envoy-ratelimit\ndeployment/envoy-ratelimit\n",
        "once after trust, once after leaves"
    );
    let observed = store.read_workload(&ratelimit()).await.unwrap().unwrap();
    assert!(!observed.restart_pending);
    assert!(
        observed
            .template_annotations
            .contains_key("certrotate.io/restarted-for")
    );
    // Nothing more to do: a rerun restarts nothing.
    run_once(&store, &clock, false).await.unwrap();
    assert_eq!(script.calls(), 2);
}

#[tokio::test]
async fn a_failed_restart_holds_the_rotation_and_runs_again() {
    let script = Script::new();
    let store = Arc::new(HostRestarts::new(MemoryStore::new(), script.commands()));
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    script.fail_with(Some(3));
    // prepared, then trust: its restart fails, and the run says so.
    let mut error = None;
    for _ in 0..3 {
        match run_once(&store, &clock, true).await {
            Ok(_) => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let error = error.expect("the failed restart fails the run");
    assert!(
        error.contains("envoy-ratelimit") && error.contains("exit status: 3"),
        "{error}"
    );
    let observed = store.read_workload(&ratelimit()).await.unwrap().unwrap();
    assert!(observed.restart_pending, "a failed restart stays pending");
    let calls = script.calls();

    // However long it waits, a pending restart holds the leaves back, and each run asks
    // for it again.
    for _ in 0..3 {
        clock.advance(HOUR);
        let result = run_once(&store, &clock, false).await;
        assert!(result.is_err(), "still failing: {result:?}");
        assert!(
            matches!(phase(&store).await, Phase::Prepared | Phase::Trust),
            "{:?}",
            phase(&store).await
        );
    }
    assert_eq!(script.calls(), calls + 3, "one attempt per run");
    assert_trusted(
        &observe(&store, &profile()).await.unwrap(),
        clock.now(),
        "held",
    );

    // Fixed: the next runs restart it and go on to the end.
    script.fail_with(None);
    engine(store.clone(), &clock, 9)
        .run(&profile(), &options(false), until_done())
        .await
        .unwrap();
    assert_eq!(phase(&store).await, Phase::Stable);
    assert!(
        !store
            .read_workload(&ratelimit())
            .await
            .unwrap()
            .unwrap()
            .restart_pending
    );
    // The retry, then the restart after leaves.
    assert_eq!(script.calls(), calls + 3 + 2);
}

#[tokio::test]
async fn an_interrupted_restart_runs_again() {
    let script = Script::new();
    let memory = Arc::new(MemoryStore::new());
    let store = Arc::new(HostRestarts::new(memory.clone(), script.commands()));
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    // Runs until trust restarted the rate limit.
    while script.calls() == 0 {
        run_once(&store, &clock, true).await.unwrap();
    }
    // A run stopped while its command ran leaves what it asked for pending: here the
    // record of a run that wrote `pending` and stopped.
    let record = ObjectRef::new(NS, RECORD_SECRET);
    let observed = memory.read_secret(&record).await.unwrap().unwrap();
    let key = "deployment.envoy-ratelimit";
    let mut value: serde_json::Value = serde_json::from_slice(&observed.data[key]).unwrap();
    value["pending"] = value["restarted"].clone();
    value["restarted"] = serde_json::json!({});
    let mut update = certrotate_kube::SecretUpdate::default();
    update
        .data
        .insert(key.into(), Some(serde_json::to_vec(&value).unwrap()));
    memory
        .update_secret(&record, &observed.version, &update)
        .await
        .unwrap();
    assert!(
        store
            .read_workload(&ratelimit())
            .await
            .unwrap()
            .unwrap()
            .restart_pending
    );

    clock.advance(HOUR);
    run_once(&store, &clock, false).await.unwrap();
    assert_eq!(script.calls(), 2, "asked again");
    assert!(
        !store
            .read_workload(&ratelimit())
            .await
            .unwrap()
            .unwrap()
            .restart_pending
    );
}

#[tokio::test]
async fn a_pending_restart_without_its_command_is_an_error_not_a_note() {
    let script = Script::new();
    let memory = Arc::new(MemoryStore::new());
    let store = Arc::new(HostRestarts::new(memory.clone(), script.commands()));
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    script.fail_with(Some(1));
    for _ in 0..3 {
        if run_once(&store, &clock, true).await.is_err() {
            break;
        }
    }
    // The next run was given no command for it.
    let bare = Arc::new(HostRestarts::new(memory.clone(), BTreeMap::new()));
    clock.advance(HOUR);
    let error = run_once(&bare, &clock, false).await.unwrap_err();
    assert!(
        error.contains("a restart is pending") && error.contains("exit status: 1"),
        "{error}"
    );
    assert_ne!(phase(&bare).await, Phase::Leaves);
}

#[tokio::test]
async fn a_command_past_its_time_limit_is_killed_with_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    // A helper in the background, then a wait: both must die at the limit.
    let script = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
    let store = running(
        vec!["sh".into(), "-c".into(), script],
        Duration::from_millis(500),
    );
    let error = store
        .restart_workload(&ratelimit(), &BTreeMap::new())
        .await
        .unwrap_err();
    let text = chain(&error);
    assert!(text.contains("did not exit within 500ms; killed"), "{text}");
    let pid: i32 = wait_for_file(&pid_file).trim().parse().unwrap();
    // SIGKILL is delivered when the process next runs: on a busy machine, a moment later.
    let mut dead = false;
    for _ in 0..100 {
        if !alive(pid) {
            dead = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dead, "the background helper {pid} survived");
    assert!(
        store
            .read_workload(&ratelimit())
            .await
            .unwrap()
            .unwrap()
            .restart_pending
    );
}

#[tokio::test]
async fn a_missing_program_is_named() {
    let store = running(
        vec!["/nonexistent/restart-it".into()],
        Duration::from_secs(5),
    );
    let error = store
        .restart_workload(&ratelimit(), &BTreeMap::new())
        .await
        .unwrap_err();
    let text = chain(&error);
    assert!(
        text.contains("cannot start restart command `/nonexistent/restart-it`"),
        "{text}"
    );
}

#[tokio::test]
async fn a_hostile_record_is_refused_without_its_content() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let root = dir.path().join("certs");
    let dir_store = DirStore::new(root.clone()).with_layout(DirLayout::Standalone);
    let mut new = certrotate_kube::NewSecret::default();
    new.secret_type = "Opaque".into();
    new.data.insert(
        "deployment.envoy-ratelimit".into(),
        b"{\"restarted\": \"SECRET-LOOKING-CONTENT\"}".to_vec(),
    );
    dir_store
        .create_secret(&ObjectRef::new(NS, RECORD_SECRET), &new)
        .await
        .unwrap();
    let script = Script::new();
    let store = HostRestarts::new(dir_store, script.commands());
    let error = store.read_workload(&ratelimit()).await.unwrap_err();
    let text = chain(&error);
    assert!(
        text.contains("secret envoy-gateway-system/certrotate-restarts key deployment.envoy-ratelimit: not a restart record"),
        "{text}"
    );
    assert!(!text.contains("SECRET-LOOKING"), "{text}");
    assert!(root.join(RECORD_SECRET).is_dir());
}

#[tokio::test]
async fn the_record_is_a_confined_secret_folder_with_private_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o700)).unwrap();
    let root = dir.path().join("certs");
    let script = Script::new();
    let store = Arc::new(HostRestarts::new(
        DirStore::new(root.clone()).with_layout(DirLayout::Standalone),
        script.commands(),
    ));
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    engine(store.clone(), &clock, 2)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap();
    assert_eq!(script.calls(), 2);
    let file = root.join(RECORD_SECRET).join("deployment.envoy-ratelimit");
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(clock.now() > T0);
}

fn wait_for_file(path: &Path) -> String {
    for _ in 0..100 {
        if let Ok(s) = std::fs::read_to_string(path)
            && !s.trim().is_empty()
        {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} never written", path.display());
}

fn alive(pid: i32) -> bool {
    // A zombie (killed, not yet reaped by init) counts as dead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
