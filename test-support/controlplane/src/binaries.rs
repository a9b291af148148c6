//! Where the Go programs are: the cache `build.sh` fills (it alone computes the cache key,
//! so it is asked, with `--locate`), or folders named by environment variables.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Set to `1` (CI does) to make missing programs a test failure instead of a skip.
pub const REQUIRE_ENV: &str = "CERTROTATE_REQUIRE_CONTROLPLANE";

/// Overrides the folder of kube-apiserver, kube-controller-manager, etcd and kwok.
const CONTROLPLANE_BIN_ENV: &str = "CERTROTATE_CONTROLPLANE_BIN";
/// Overrides the folder of tlspeer.
const TLSPEER_BIN_ENV: &str = "CERTROTATE_TLSPEER_BIN";

/// The command that builds everything, from the repository's root.
const BUILD_COMMAND: &str = "nice -n 19 test-support/controlplane/build.sh";

/// The programs of the control plane, found built.
#[derive(Debug, Clone)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// Finds the built programs, or says why they are not there.
    pub fn locate() -> Result<Binaries, String> {
        let bins = Binaries::folder()?;
        for path in [
            bins.kube_apiserver(),
            bins.kube_controller_manager(),
            bins.etcd(),
            bins.kwok(),
            bins.kwok_stages(),
        ] {
            if !path.is_file() {
                return Err(format!("{} is not built", path.display()));
            }
        }
        Ok(bins)
    }

    /// The folder the programs are, or would be, in; none of them checked.
    pub(crate) fn folder() -> Result<Binaries, String> {
        let dir = match std::env::var_os(CONTROLPLANE_BIN_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => locate("CONTROLPLANE_BIN")?,
        };
        Ok(Binaries { dir })
    }

    /// kube-apiserver.
    pub fn kube_apiserver(&self) -> PathBuf {
        self.dir.join("kube-apiserver")
    }

    /// kube-controller-manager.
    pub fn kube_controller_manager(&self) -> PathBuf {
        self.dir.join("kube-controller-manager")
    }

    /// etcd.
    pub fn etcd(&self) -> PathBuf {
        self.dir.join("etcd")
    }

    /// kwok.
    pub fn kwok(&self) -> PathBuf {
        self.dir.join("kwok")
    }

    /// helm (built by `build.sh helm`; it renders Envoy Gateway's chart and certrotate's).
    pub fn helm(&self) -> PathBuf {
        self.dir.join("helm")
    }

    /// Envoy Gateway's chart rendered by `build.sh envoy-gateway-chart` (`install.yaml`) and
    /// its rate-limit Deployment (`ratelimit-deployment.yaml`), if built.
    pub fn envoy_gateway(&self) -> PathBuf {
        self.dir.join("envoy-gateway")
    }

    /// Envoy Gateway's controller binary (`envoy-gateway`, built by `build.sh
    /// envoy-gateway`), whose `certgen` the parity tests run.
    pub fn envoy_gateway_controller(&self) -> PathBuf {
        self.dir.join("envoy-gateway-controller")
    }

    /// The rate limit service (`github.com/envoyproxy/ratelimit`'s `src/service_cmd`, built
    /// by `build.sh ratelimit` at the version Envoy Gateway's go.mod requires).
    pub fn ratelimit(&self) -> PathBuf {
        self.dir.join("ratelimit")
    }

    /// KWOK's Stage configuration (node initialize and heartbeat, pod ready, complete and
    /// delete), copied by `build.sh` from the KWOK release it builds.
    pub fn kwok_stages(&self) -> PathBuf {
        self.dir.join("kwok-stages.yaml")
    }
}

/// The Go TLS peer (`test-support/tlspeer`), or `None` after one line saying why the tests
/// that need it did not run (a panic under `CERTROTATE_REQUIRE_CONTROLPLANE=1`).
pub fn tlspeer() -> Option<PathBuf> {
    let found = match std::env::var_os(TLSPEER_BIN_ENV) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => locate("TLSPEER_BIN"),
    }
    .map(|dir| dir.join("tlspeer"))
    .and_then(|bin| {
        if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("{} is not built", bin.display()))
        }
    });
    match found {
        Ok(bin) => Some(bin),
        Err(why) => {
            skip_or_fail("the tests against the Go TLS peer", &why);
            None
        }
    }
}

/// Says (once per test binary, on standard error past the test harness's capture) that
/// `what` did not run, why, and the command that builds what they need; or panics with the
/// same words under `CERTROTATE_REQUIRE_CONTROLPLANE=1`.
pub fn skip_or_fail(what: &str, why: &str) {
    skip_or_fail_how(
        what,
        why,
        &format!("build it with `{BUILD_COMMAND}` (from the repository's root)"),
    );
}

/// [`skip_or_fail`], with `how` saying what to do about it.
pub(crate) fn skip_or_fail_how(what: &str, why: &str, how: &str) {
    let line = format!("{what} did not run: {why}; {how} and run the tests again");
    let required = std::env::var_os(REQUIRE_ENV).is_some_and(|v| !v.is_empty() && v != "0");
    assert!(!required, "{REQUIRE_ENV} is set, but {line}");
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut said = SAID
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !said.contains(&line) {
        // Written to the stream itself, not with `eprintln!`, which libtest captures.
        let _ = writeln!(std::io::stderr(), "note: {line}");
        said.push(line);
    }
}

/// Runs `build.sh --locate` and returns the folder it prints for `key`.
fn locate(key: &str) -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--locate")
        .output()
        .map_err(|e| format!("running {} --locate: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} --locate failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(PathBuf::from)
        .ok_or_else(|| format!("{} --locate printed no {key}", script.display()))
}
