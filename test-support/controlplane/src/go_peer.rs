//! Driving the Go TLS peer (`test-support/tlspeer`, found by [`crate::tlspeer`]): a server
//! that re-reads `tls.crt`, `tls.key` and `ca.crt` from its folder on every handshake and
//! requires a client certificate, as Envoy Gateway's xDS server does, and a client that
//! connects with the files of its folder and reports what it counted.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

/// A running server, killed by PID when dropped (a failing test included).
pub struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    /// Where it listens (`127.0.0.1:PORT`).
    pub addr: String,
}

/// What the server counted, from its summary line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Handshakes it completed.
    pub ok: u64,
    /// Handshakes that failed (a refused client certificate, or the client refused it).
    pub failed: u64,
}

impl Server {
    /// Starts `tlspeer serve` on 127.0.0.1 with the files of `dir`, re-read on every
    /// handshake.
    pub fn start(tlspeer: &Path, dir: &Path) -> std::io::Result<Self> {
        Self::start_with(Command::new(tlspeer), dir, "127.0.0.1:0", &[])
    }

    /// Starts `tlspeer serve` on `listen` (`127.0.0.1:0` for any port) with the files of
    /// `dir` read once, at start: a component that loads its certificates only at start,
    /// or a pod mounting them with `subPath`. Prints no line per handshake (a long run
    /// would fill the pipe).
    pub fn start_once(tlspeer: &Path, dir: &Path, listen: &str) -> std::io::Result<Self> {
        Self::start_with(Command::new(tlspeer), dir, listen, &["-once", "-quiet"])
    }

    /// Starts `tlspeer serve` on 127.0.0.1 re-reading per handshake, printing only its
    /// summary.
    pub fn start_quiet(tlspeer: &Path, dir: &Path) -> std::io::Result<Self> {
        Self::start_with(Command::new(tlspeer), dir, "127.0.0.1:0", &["-quiet"])
    }

    /// Starts `tlspeer serve` listening at `listen` with the files of `dir`, run by
    /// `tlspeer` (a `Command` of the program, or of `ip netns exec NS program`, which
    /// execs it: the child is the server either way).
    pub fn start_at(tlspeer: Command, dir: &Path, listen: &str) -> std::io::Result<Self> {
        Self::start_with(tlspeer, dir, listen, &[])
    }

    fn start_with(
        mut tlspeer: Command,
        dir: &Path,
        listen: &str,
        flags: &[&str],
    ) -> std::io::Result<Self> {
        let mut child = tlspeer
            .args(["serve", "-listen", listen])
            .args(flags)
            .arg("-dir")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(std::io::Error::other("tlspeer serve: no standard output"));
        };
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let first: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| std::io::Error::other(format!("tlspeer serve said {line:?}: {e}")))?;
        let Some(addr) = first["listening"].as_str().map(str::to_owned) else {
            let _ = child.kill();
            return Err(std::io::Error::other(format!(
                "tlspeer serve said {line:?}"
            )));
        };
        Ok(Self {
            child,
            stdout,
            addr,
        })
    }

    /// Stops the server (closing its standard input) and returns what it counted.
    pub fn stop(mut self) -> std::io::Result<Counts> {
        drop(self.child.stdin.take());
        let summary = (&mut self.stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
            .find(|v| v.get("handshakes_ok").is_some())
            .ok_or_else(|| std::io::Error::other("tlspeer serve gave no summary"))?;
        Ok(Counts {
            ok: summary["handshakes_ok"].as_u64().unwrap_or_default(),
            failed: summary["handshakes_failed"].as_u64().unwrap_or_default(),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tlspeer client` `n` times against `addr` as `server_name`, with the files of
/// `dir`: whether every handshake succeeded, and its summary line.
pub fn connect(
    tlspeer: &Path,
    addr: &str,
    server_name: &str,
    dir: &Path,
    n: u32,
) -> std::io::Result<(bool, serde_json::Value)> {
    let out = Command::new(tlspeer)
        .args(["client", "-addr", addr, "-server-name", server_name, "-n"])
        .arg(n.to_string())
        .arg("-dir")
        .arg(dir)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = serde_json::from_str(stdout.lines().last().unwrap_or_default()).map_err(|e| {
        std::io::Error::other(format!(
            "tlspeer client: {e}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    })?;
    Ok((out.status.success(), summary))
}

/// Writes `tls.crt`, `tls.key` and `ca.crt` into `dir` (the files of a mounted Secret).
pub fn mount(dir: &Path, crt: &[u8], key: &[u8], ca: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("tls.crt"), crt)?;
    std::fs::write(dir.join("tls.key"), key)?;
    std::fs::write(dir.join("ca.crt"), ca)
}
