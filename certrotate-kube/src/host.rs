//! Restarting start-only workloads on hosts: a command per workload, the host's
//! `kubectl rollout restart`.
//!
//! [`HostRestarts`] wraps a store without workloads (the directory store: local mode and
//! Envoy Gateway's standalone hosts) and gives the profile's start-only workloads a
//! restart command each. A restart runs the command (its argv, no shell) with a time
//! limit; exit status 0 means the workload restarted. What was asked and what happened is
//! kept in a record Secret of the wrapped store, [`RECORD_SECRET`], one key per workload
//! (`deployment.envoy-ratelimit`), written before the command runs and after it ends:
//!
//! - the annotations of the last restart that succeeded, read back as the workload's
//!   pod-template annotations (so the planner sees which Secret contents it restarted
//!   into, as with a Deployment);
//! - the restart asked for and not known to have happened: a command that failed, timed
//!   out, or a run that stopped while it ran. It is read back as
//!   [`ObservedWorkload::restart_pending`]: the planner asks for it again, and the phase
//!   waits for it. A failed restart holds the rotation; it never passes for done.
//!
//! The command's output goes to certrotate's stderr (its stdout stays the run's report);
//! it gets `CERTROTATE_WORKLOAD` and `CERTROTATE_WORKLOAD_KIND` in its environment. On
//! its time limit the whole process group is killed (`SIGKILL`), so a command that started
//! helpers leaves none behind.

use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use certrotate_core::plan::{
    ObjectRef, ObservedSecret, ObservedWebhook, ObservedWorkload, WebhookRef, WorkloadRef,
    WorkloadSelector,
};
use serde::{Deserialize, Serialize};
use wait_timeout::ChildExt;

use crate::IoKind;
use crate::error::StoreError;
use crate::store::{NewSecret, SecretStore, SecretUpdate, Store, WebhookStore, WorkloadStore};

/// The Secret (in each workload's namespace) that records the restarts run by commands.
pub const RECORD_SECRET: &str = "certrotate-restarts";

/// The default time limit of a restart command.
pub const DEFAULT_RESTART_TIMEOUT: Duration = Duration::from_secs(120);

/// How a workload restarts on a host: a program and its arguments, run without a shell.
#[derive(Clone, PartialEq, Eq)]
pub struct RestartCommand {
    argv: Vec<String>,
    timeout: Duration,
}

impl RestartCommand {
    /// `argv[0]` with arguments `argv[1..]` (looked up in `PATH` if it has no `/`), given
    /// `timeout` to exit. `None` if `argv` is empty.
    pub fn new(argv: Vec<String>, timeout: Duration) -> Option<Self> {
        (!argv.is_empty()).then_some(Self { argv, timeout })
    }

    /// The program and its arguments.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn program(&self) -> &str {
        &self.argv[0]
    }

    /// Runs the command to its end, or kills its process group at the time limit.
    fn run(&self, workload: &WorkloadRef) -> Result<(), CommandFailed> {
        let program = self.program().to_owned();
        let mut command = Command::new(&self.argv[0]);
        command
            .args(&self.argv[1..])
            .env("CERTROTATE_WORKLOAD", &workload.object.name)
            .env("CERTROTATE_WORKLOAD_KIND", workload.kind.to_string())
            .stdin(Stdio::null())
            // Its own process group: the time limit kills what it started too.
            .process_group(0);
        // The run's report is certrotate's stdout; the command's output goes to stderr.
        match std::io::stderr().as_fd().try_clone_to_owned() {
            Ok(err) => {
                command.stdout(Stdio::from(err));
            }
            Err(_) => {
                command.stdout(Stdio::null());
            }
        }
        let mut child = command.spawn().map_err(|source| CommandFailed::Spawn {
            program: program.clone(),
            source,
        })?;
        let status = match child.wait_timeout(self.timeout) {
            Ok(Some(status)) => status,
            Ok(None) => {
                kill_group(&mut child);
                return Err(CommandFailed::TimedOut {
                    program,
                    after: self.timeout,
                });
            }
            Err(source) => {
                kill_group(&mut child);
                return Err(CommandFailed::Wait { program, source });
            }
        };
        if status.success() {
            Ok(())
        } else {
            Err(CommandFailed::Status { program, status })
        }
    }
}

/// Kills the child's process group, then reaps the child.
fn kill_group(child: &mut std::process::Child) {
    if let Ok(pid) = i32::try_from(child.id())
        && let Some(pid) = rustix::process::Pid::from_raw(pid)
    {
        // The group may be gone already; the child is killed and reaped below either way.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl fmt::Debug for RestartCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestartCommand")
            .field("argv", &self.argv)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a restart command did not restart its workload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandFailed {
    /// The program could not be started.
    #[error("cannot start restart command `{program}`")]
    Spawn {
        /// `argv[0]`.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It exited with another status than 0, or was killed by a signal.
    #[error("restart command `{program}` failed ({status})")]
    Status {
        /// `argv[0]`.
        program: String,
        /// Its status.
        status: ExitStatus,
    },
    /// It did not exit within its time limit, and was killed with its process group.
    #[error("restart command `{program}` did not exit within {}; killed", humantime::format_duration(*after))]
    TimedOut {
        /// `argv[0]`.
        program: String,
        /// The time limit.
        after: Duration,
    },
    /// A restart is pending (an earlier attempt failed or was interrupted) and this store
    /// was given no command to run it.
    #[error(
        "a restart is pending{} and no restart command is given for it",
        match last { Some(last) => format!(" (the last attempt: {last})"), None => String::new() }
    )]
    NotConfigured {
        /// Why the last attempt failed, if it ended.
        last: Option<String>,
    },
    /// Waiting for it failed.
    #[error("waiting for restart command `{program}`")]
    Wait {
        /// `argv[0]`.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A malformed record in the record Secret (the store's folder may hold anything).
#[derive(Debug, thiserror::Error)]
#[error("secret {secret} key {key}: not a restart record ({problem})")]
struct BadRecord {
    secret: ObjectRef,
    key: String,
    problem: String,
}

/// What the record Secret keeps of one workload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    /// The pod-template annotations of the last restart that succeeded.
    #[serde(default)]
    restarted: BTreeMap<String, String>,
    /// The annotations of a restart asked for and not known to have happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<BTreeMap<String, String>>,
    /// Why the last attempt failed, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
}

/// A store whose start-only workloads restart by running a command each (see the
/// [module docs](self)). Secrets and webhook configurations are the wrapped store's.
#[derive(Debug)]
pub struct HostRestarts<S> {
    inner: S,
    commands: BTreeMap<String, RestartCommand>,
}

impl<S: Store> HostRestarts<S> {
    /// `inner`, whose workloads named in `commands` (the profile's workload names) restart
    /// by running their command. Workloads without one are not held by this store, as in
    /// `inner`, unless a record of an earlier restart is kept for them.
    pub fn new(inner: S, commands: BTreeMap<String, RestartCommand>) -> Self {
        Self { inner, commands }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn record_ref(workload: &WorkloadRef) -> ObjectRef {
        ObjectRef::new(&workload.object.namespace, RECORD_SECRET)
    }

    fn record_key(workload: &WorkloadRef) -> String {
        format!("{}.{}", workload.kind, workload.object.name)
    }

    async fn read_record(
        &self,
        workload: &WorkloadRef,
    ) -> Result<(Option<ObservedSecret>, Option<Record>), StoreError> {
        let secret = Self::record_ref(workload);
        let key = Self::record_key(workload);
        let Some(observed) = self.inner.read_secret(&secret).await? else {
            return Ok((None, None));
        };
        let record = match observed.data.get(&key) {
            None => None,
            Some(bytes) => Some(serde_json::from_slice(bytes).map_err(|e| {
                // The position only: serde's message may quote the file's content.
                StoreError::Backend(Box::new(BadRecord {
                    secret: secret.clone(),
                    key: key.clone(),
                    problem: format!("invalid JSON at line {} column {}", e.line(), e.column()),
                }))
            })?),
        };
        Ok((Some(observed), record))
    }

    /// Changes the workload's record with `f`, creating the record Secret if need be, and
    /// retrying on a concurrent write.
    async fn update_record(
        &self,
        workload: &WorkloadRef,
        f: impl Fn(&mut Record),
    ) -> Result<(), StoreError> {
        const ATTEMPTS: usize = 3;
        let secret = Self::record_ref(workload);
        let key = Self::record_key(workload);
        let mut last = StoreError::Conflict;
        for _ in 0..ATTEMPTS {
            let (observed, record) = self.read_record(workload).await?;
            let mut record = record.unwrap_or_default();
            f(&mut record);
            let bytes =
                serde_json::to_vec(&record).map_err(|e| StoreError::Backend(Box::new(e)))?;
            let result = match observed {
                Some(observed) => {
                    let mut update = SecretUpdate::default();
                    update.data.insert(key.clone(), Some(bytes));
                    self.inner
                        .update_secret(&secret, &observed.version, &update)
                        .await
                }
                None => {
                    let new = NewSecret {
                        secret_type: "Opaque".into(),
                        data: BTreeMap::from([(key.clone(), bytes)]),
                        labels: BTreeMap::from([(
                            "app.kubernetes.io/managed-by".into(),
                            "certrotate".into(),
                        )]),
                        annotations: BTreeMap::new(),
                    };
                    self.inner.create_secret(&secret, &new).await
                }
            };
            match result {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }
}

impl<S: Store> SecretStore for HostRestarts<S> {
    async fn read_secret(&self, secret: &ObjectRef) -> Result<Option<ObservedSecret>, StoreError> {
        self.inner.read_secret(secret).await
    }

    async fn read_secrets(
        &self,
        secrets: &[ObjectRef],
        labels: &BTreeMap<String, String>,
    ) -> Vec<Result<Option<ObservedSecret>, StoreError>> {
        self.inner.read_secrets(secrets, labels).await
    }

    async fn create_secret(
        &self,
        secret: &ObjectRef,
        new: &NewSecret,
    ) -> Result<String, StoreError> {
        self.inner.create_secret(secret, new).await
    }

    async fn update_secret(
        &self,
        secret: &ObjectRef,
        expected_version: &str,
        update: &SecretUpdate,
    ) -> Result<String, StoreError> {
        self.inner
            .update_secret(secret, expected_version, update)
            .await
    }

    async fn write_secrets(
        &self,
        writes: &[crate::SecretWrite],
    ) -> Vec<Result<String, StoreError>> {
        self.inner.write_secrets(writes).await
    }
}

impl<S: Store> WorkloadStore for HostRestarts<S> {
    async fn read_workload(
        &self,
        workload: &WorkloadRef,
    ) -> Result<Option<ObservedWorkload>, StoreError> {
        let command = self.commands.get(&workload.object.name);
        match self.read_record(workload).await?.1 {
            Some(record) => Ok(Some(
                ObservedWorkload::new(record.restarted, true)
                    .with_restart_pending(record.pending.is_some()),
            )),
            None if command.is_some() => Ok(Some(ObservedWorkload::new(BTreeMap::new(), true))),
            None => self.inner.read_workload(workload).await,
        }
    }

    /// Selected workloads (Envoy's proxies, by label) are the wrapped store's: a host has
    /// no labels to select by, so a command restarts a workload the profile names.
    async fn list_workloads(
        &self,
        selector: &WorkloadSelector,
    ) -> Result<Vec<(WorkloadRef, ObservedWorkload)>, StoreError> {
        self.inner.list_workloads(selector).await
    }

    async fn restart_workload(
        &self,
        workload: &WorkloadRef,
        annotations: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let Some(command) = self.commands.get(&workload.object.name) else {
            // A restart left pending must not pass for done, nor be skipped as a workload
            // this store does not hold: the run says why it cannot finish it.
            if let (
                _,
                Some(Record {
                    pending: Some(_),
                    failure,
                    ..
                }),
            ) = self.read_record(workload).await?
            {
                return Err(StoreError::Backend(Box::new(
                    CommandFailed::NotConfigured { last: failure },
                )));
            }
            return self.inner.restart_workload(workload, annotations).await;
        };
        // Asked before it runs: a run stopped while the command ran leaves it pending.
        self.update_record(workload, |r| {
            r.pending = Some(annotations.clone());
            r.failure = None;
        })
        .await?;
        match command.run(workload) {
            Ok(()) => {
                tracing::info!(workload = %workload, "restart command succeeded");
                self.update_record(workload, |r| {
                    r.restarted = annotations.clone();
                    r.pending = None;
                    r.failure = None;
                })
                .await
            }
            Err(failed) => {
                let failure = failed.to_string();
                self.update_record(workload, |r| r.failure = Some(failure.clone()))
                    .await?;
                Err(StoreError::Backend(Box::new(failed)))
            }
        }
    }
}

impl<S: Store> WebhookStore for HostRestarts<S> {
    async fn read_webhook(
        &self,
        webhook: &WebhookRef,
    ) -> Result<Option<ObservedWebhook>, StoreError> {
        self.inner.read_webhook(webhook).await
    }

    async fn update_webhook(
        &self,
        webhook: &WebhookRef,
        expected_version: &str,
        ca_bundles: &[Vec<u8>],
    ) -> Result<String, StoreError> {
        self.inner
            .update_webhook(webhook, expected_version, ca_bundles)
            .await
    }
}

impl<S: Store> Store for HostRestarts<S> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn has_cluster_objects(&self) -> bool {
        self.inner.has_cluster_objects()
    }

    fn io(&self) -> IoKind {
        // Commands block their thread while they run.
        IoKind::Blocking
    }
}
