//! The control plane's processes: spawned with a parent-death signal into one process group,
//! logged to files, watched, and stopped by PID.

use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use rustix::process::{Pid, Signal, kill_process_group};

use crate::{Error, io_err};

/// Kills every PID read from its standard input, then removes the folder, once that input
/// closes: when the test binary exits, however it exits. A line `-PID` forgets a PID (a
/// program stopped and reaped already, whose PID may be reused by another process).
const REAPER: &str = r#"pids=
while read -r line; do
  case $line in
    -*) keep=; for p in $pids; do [ "$p" = "${line#-}" ] || keep="$keep $p"; done; pids=$keep ;;
    *) pids="$pids $line" ;;
  esac
done
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
rm -rf -- "$1"
"#;

struct Running {
    name: String,
    child: Child,
    log: PathBuf,
}

/// The processes of one control plane, and its folder.
pub(crate) struct Procs {
    dir: PathBuf,
    children: RefCell<Vec<Running>>,
    group: Option<Pid>,
    reaper: Option<(Child, ChildStdin)>,
    pdeathsig: bool,
}

impl Procs {
    /// Makes the control plane's folder (under the temporary directory) and its reaper.
    pub(crate) fn new() -> Result<Procs, Error> {
        let dir = tempfile::Builder::new()
            .prefix("certrotate-controlplane-")
            .tempdir()
            .map_err(io_err("making the control plane's folder"))?
            // Removed by the reaper (or by `Drop`), not by TempDir: a static is never dropped.
            .keep();
        let mut reaper = Command::new("sh")
            .args(["-c", REAPER, "certrotate-controlplane-reaper"])
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of the terminal's process group: a Ctrl-C ends the tests, not the reaper.
            .process_group(0)
            .spawn()
            .map_err(io_err("starting the reaper (sh)"))?;
        let stdin = reaper.stdin.take().ok_or_else(|| Error::Io {
            what: "starting the reaper (sh)".into(),
            source: std::io::Error::other("no standard input pipe"),
        })?;
        let pdeathsig = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        Ok(Procs {
            dir,
            children: RefCell::new(Vec::new()),
            group: None,
            reaper: Some((reaper, stdin)),
            pdeathsig,
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts `program` with `args`, its output to `NAME.log` in the folder.
    pub(crate) fn spawn(
        &mut self,
        name: &str,
        program: &Path,
        args: &[String],
    ) -> Result<(), Error> {
        let log = self.dir.join(format!("{name}.log"));
        let out = File::create(&log).map_err(io_err(format!("creating {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(io_err(format!("opening {}", log.display())))?;
        // `setpriv --pdeathsig KILL` sets PR_SET_PDEATHSIG and execs the program (same PID):
        // it dies with this thread even if nothing else stops it. The workspace forbids the
        // `unsafe` a `pre_exec` hook calling prctl would need.
        let mut command = if self.pdeathsig {
            let mut c = Command::new("setpriv");
            c.args(["--pdeathsig", "KILL", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(self.group.map_or(0, Pid::as_raw_pid));
        let child = command
            .spawn()
            .map_err(io_err(format!("starting {}", program.display())))?;
        let pid = child.id();
        if self.group.is_none() {
            self.group = Pid::from_raw(i32::try_from(pid).unwrap_or(0));
        }
        if let Some((_, stdin)) = &mut self.reaper {
            let _ = writeln!(stdin, "{pid}");
        }
        self.children.borrow_mut().push(Running {
            name: name.into(),
            child,
            log,
        });
        Ok(())
    }

    /// The log file of the program started as `name`.
    pub(crate) fn log(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    /// Stops the program started as `name` (SIGKILL by its PID, as a pod's container is
    /// killed), reaps it, and tells the reaper to forget its PID. Its log stays. Does
    /// nothing if no program has that name.
    pub(crate) fn stop(&mut self, name: &str) {
        let mut children = self.children.borrow_mut();
        let Some(at) = children.iter().position(|r| r.name == name) else {
            return;
        };
        let mut running = children.remove(at);
        let _ = running.child.kill();
        let _ = running.child.wait();
        if let Some((_, stdin)) = &mut self.reaper {
            let _ = writeln!(stdin, "-{}", running.child.id());
        }
    }

    /// Fails with the log's last lines if a program has exited.
    pub(crate) fn check_alive(&self) -> Result<(), Error> {
        for running in self.children.borrow_mut().iter_mut() {
            if let Ok(Some(status)) = running.child.try_wait() {
                return Err(Error::Exited {
                    name: running.name.clone(),
                    status,
                    log: running.log.display().to_string(),
                    tail: tail(&running.log, 30),
                });
            }
        }
        Ok(())
    }
}

impl Drop for Procs {
    /// Stops every program by PID (SIGKILL: a test control plane has nothing to save), then
    /// its process group, reaps them, and removes the folder.
    fn drop(&mut self) {
        let mut children = self.children.borrow_mut();
        for running in children.iter_mut().rev() {
            let _ = running.child.kill();
        }
        if let Some(group) = self.group {
            let _ = kill_process_group(group, Signal::KILL);
        }
        for running in children.iter_mut() {
            let _ = running.child.wait();
        }
        if let Some((mut reaper, stdin)) = self.reaper.take() {
            drop(stdin);
            let _ = reaper.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The last `lines` lines of a log file (at most its last 16 KiB).
fn tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

    use super::*;
    use crate::Deadline;
    use std::time::Duration;

    /// Whether `pid` is a live process (not gone, not a zombie waiting to be reaped).
    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
    }

    fn sleeper(procs: &mut Procs) -> u32 {
        procs
            .spawn("sleep", Path::new("/bin/sleep"), &["1000".into()])
            .unwrap();
        procs.children.borrow().last().unwrap().child.id()
    }

    async fn gone(pid: u32, what: &str) {
        let deadline = Deadline::new(what, Duration::from_secs(10));
        while alive(pid) {
            deadline.tick().await.unwrap();
        }
    }

    #[tokio::test]
    async fn drop_kills_by_pid_and_removes_the_folder() {
        let mut procs = Procs::new().unwrap();
        let pid = sleeper(&mut procs);
        let dir = procs.dir().to_path_buf();
        assert!(alive(pid) && dir.join("sleep.log").is_file());
        procs.check_alive().unwrap();
        drop(procs);
        assert!(!alive(pid));
        assert!(!dir.exists());
    }

    /// `stop` kills one program by PID and reaps it; the others run on, and the reaper
    /// (told to forget the PID) still kills those at the end.
    #[tokio::test]
    async fn stop_kills_one_program_and_the_reaper_forgets_it() {
        let mut procs = Procs::new().unwrap();
        let first = sleeper(&mut procs);
        procs
            .spawn("other", Path::new("/bin/sleep"), &["1000".into()])
            .unwrap();
        let other = procs.children.borrow().last().unwrap().child.id();
        procs.stop("sleep");
        assert!(!alive(first), "stopped and reaped");
        assert!(alive(other));
        assert!(procs.log("sleep").is_file(), "its log stays");
        procs.check_alive().unwrap();
        let (mut reaper, stdin) = procs.reaper.take().unwrap();
        drop(stdin);
        reaper.wait().unwrap();
        gone(other, "the reaper to kill the program left").await;
        drop(procs);
    }

    #[tokio::test]
    async fn a_program_that_exits_is_reported_with_its_log() {
        let mut procs = Procs::new().unwrap();
        procs
            .spawn(
                "fails",
                Path::new("/bin/sh"),
                &["-c".into(), "echo no etcd here >&2; exit 3".into()],
            )
            .unwrap();
        let deadline = Deadline::new("the program to exit", Duration::from_secs(10));
        let err = loop {
            if let Err(e) = procs.check_alive() {
                break e;
            }
            deadline.tick().await.unwrap();
        };
        let text = err.to_string();
        assert!(
            text.contains("fails exited") && text.contains("no etcd here"),
            "{text}"
        );
    }

    /// What happens when the test binary dies without dropping anything: the reaper's
    /// standard input closes, and it kills the programs by PID and removes the folder.
    #[tokio::test]
    async fn the_reaper_kills_and_cleans_up_when_its_pipe_closes() {
        let mut procs = Procs::new().unwrap();
        let pid = sleeper(&mut procs);
        let dir = procs.dir().to_path_buf();
        let (mut reaper, stdin) = procs.reaper.take().unwrap();
        drop(stdin);
        reaper.wait().unwrap();
        gone(pid, "the reaper to kill the program").await;
        assert!(!dir.exists());
        drop(procs);
    }

    /// The parent-death signal: a program whose spawning thread ends dies with it, although
    /// nothing else stops it.
    #[tokio::test]
    async fn a_program_dies_with_the_thread_that_started_it() {
        let spawned = std::thread::spawn(|| {
            let mut procs = Procs::new().unwrap();
            if !procs.pdeathsig {
                return None;
            }
            let pid = sleeper(&mut procs);
            // setpriv sets the signal, then execs: wait for the exec, or this thread may end
            // before the signal is set (the owner thread of a control plane outlives that).
            let start = std::time::Instant::now();
            while std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .unwrap()
                .trim()
                != "sleep"
            {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "setpriv did not exec sleep"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            let reaper = procs.reaper.take().unwrap();
            // Nothing stops it: no Drop, no reaper.
            std::mem::forget(procs);
            Some((pid, reaper))
        })
        .join()
        .unwrap();
        let Some((pid, reaper)) = spawned else {
            println!("skipped: `setpriv --pdeathsig` (util-linux) is not available here");
            return;
        };
        gone(pid, "the parent-death signal to kill the program").await;
        let (mut reaper, stdin) = reaper;
        drop(stdin);
        reaper.wait().unwrap();
    }
}
