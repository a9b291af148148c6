//! A network namespace for test servers that need an address other than loopback (the API
//! server refuses loopback addresses in an EndpointSlice): `ip netns add`, a veth pair with
//! the host's end at `HOST/24` and the namespace's at each of its addresses, its `lo` up.
//! Servers started with [`NetNs::command`] listen there; the host reaches them through the
//! veth. Removed when dropped (also while a test unwinds from a panic), by name.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A network namespace of this test process, deleted when dropped.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    host_if: String,
}

impl NetNs {
    /// Creates a namespace whose veth end holds `inside` (each /24), the host's end
    /// `host`/24. `Err` says why it could not be made (no `ip`, not root, no netns
    /// support): the caller skips with it.
    pub fn create(host: Ipv4Addr, inside: &[Ipv4Addr]) -> Result<Self, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}{n}", std::process::id() % 100_000);
        let ns = Self {
            name: format!("certrotate-{id}"),
            // Interface names hold 15 bytes at most.
            host_if: format!("crh{id}"),
        };
        let peer = format!("crn{id}");
        ip(&["netns", "add", &ns.name])?;
        // From here the namespace exists: `ns` removes it on every way out.
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            &ns.name,
        ])?;
        ip(&["addr", "add", &format!("{host}/24"), "dev", &ns.host_if])?;
        ip(&["link", "set", &ns.host_if, "up"])?;
        for addr in inside {
            ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", &peer])?;
        }
        ns.ip(&["link", "set", &peer, "up"])?;
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `program` to run inside the namespace (`ip netns exec NAME program`: `ip` execs it,
    /// so the child's PID is the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        ip(&all)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // The veth pair goes with the namespace; its host end is removed too in case the
        // namespace was already gone.
        let _ = ip(&["netns", "del", &self.name]);
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("`ip` cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
