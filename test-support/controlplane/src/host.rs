//! Envoy Gateway's controller and its rate limit, as standalone (host) mode runs them: no
//! Kubernetes, certificates read from `<configHome>/certs/{envoy-gateway,envoy,
//! envoy-rate-limit}/` (github.com/envoyproxy/gateway v1.9.0
//! `internal/infrastructure/host/paths.go`), on 127.0.0.1, with Redis beside them.
//!
//! The controller runs `envoy-gateway server` with the File provider (an empty folder: no
//! GatewayClass, no Gateway, so it never launches Envoy through func-e, which would download
//! it) and a `rateLimit` backend, so its rate-limit xDS server runs. Its xDS servers re-read
//! `envoy-gateway/{tls.crt,tls.key,ca.crt}` on every handshake (`internal/crypto/
//! cert_load.go`). Host mode does not start the rate limit (`internal/infrastructure/host/
//! ratelimit_infra.go`: "not supported yet"), so the harness does, with the environment the
//! controller gives the rate-limit Deployment in a cluster (`internal/infrastructure/
//! kubernetes/ratelimit/resource.go`), pointed at `envoy-rate-limit/`.
//!
//! Ports: the controller's are fixed upstream (xDS 18000, rate-limit xDS 18001, Wasm 18002,
//! the File provider's health probe 8081, metrics 19001, all on every interface), so a
//! [`HostControlPlane`] holds a file lock in the temporary directory for its life: two never
//! run at once on one machine, whichever worktree or test binary starts them. The rate limit
//! cannot serve gRPC on its default 8081 beside the controller (the health probe has it),
//! so it serves on a free port, as do Redis, the rate limit's HTTP and debug ports and the
//! controller's admin server.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::binaries::{Binaries, skip_or_fail_how};
use crate::procs::Procs;
use crate::{Deadline, Error, free_ports, io_err};

/// The controller's xDS server for Envoy (fixed upstream).
pub const XDS_PORT: u16 = 18000;
/// The controller's xDS server for the rate limit (fixed upstream).
pub const RATE_LIMIT_XDS_PORT: u16 = 18001;
/// The controller's Wasm HTTP server (fixed upstream).
pub const WASM_PORT: u16 = 18002;
/// The name the rate limit's xDS client verifies in the controller's certificate: the
/// controller's Service in a cluster (the host of `CONFIG_GRPC_XDS_SERVER_URL` there).
pub const CONTROLLER_SERVER_NAME: &str = "envoy-gateway.envoy-gateway-system.svc.cluster.local";

/// How long the controller or the rate limit may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a wait for the file lock of the fixed ports may take.
const LOCK_TIMEOUT: Duration = Duration::from_secs(600);
/// The line the rate limit logs once its xDS client's connection is ready (`grpc.Dial` with
/// `WithBlock`: after the TLS handshake, both certificates accepted).
pub const RATE_LIMIT_XDS_CONNECTED: &str = "Connection to xDS Management Server is successful";

/// The line the rate limit logs once its gRPC server listens (`src/server/server_impl.go`).
const RATE_LIMIT_GRPC_LISTENING: &str = "Listening for gRPC on";

/// The programs standalone mode needs.
#[derive(Debug, Clone)]
pub struct HostBinaries {
    controller: PathBuf,
    ratelimit: PathBuf,
    redis: PathBuf,
}

impl HostBinaries {
    /// Envoy Gateway's controller, the rate limit (both built by `build.sh`) and
    /// `redis-server` (Debian's `redis-server`, on `PATH`), or `None` after one line saying
    /// why the tests that need them did not run (a panic under
    /// `CERTROTATE_REQUIRE_CONTROLPLANE=1`).
    pub fn locate() -> Option<HostBinaries> {
        const WHAT: &str =
            "the live rotation tests against Envoy Gateway's controller and rate limit";
        let bins = match Binaries::folder() {
            Ok(bins) => bins,
            Err(why) => {
                crate::skip_or_fail(WHAT, &why);
                return None;
            }
        };
        for path in [bins.envoy_gateway_controller(), bins.ratelimit()] {
            if !path.is_file() {
                crate::skip_or_fail(WHAT, &format!("{} is not built", path.display()));
                return None;
            }
        }
        let Some(redis) = find_on_path("redis-server") else {
            skip_or_fail_how(
                WHAT,
                "redis-server is not on PATH",
                "install it (`apt-get install -y redis-server`)",
            );
            return None;
        };
        Some(HostBinaries {
            controller: bins.envoy_gateway_controller(),
            ratelimit: bins.ratelimit(),
            redis,
        })
    }
}

/// `name` in a folder of `PATH` (or `/usr/sbin`, `/usr/bin`), if it is there.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Envoy Gateway's controller in standalone mode, Redis, and the rate limit, running; all
/// stopped by PID when dropped.
pub struct HostControlPlane {
    procs: Procs,
    bins: HostBinaries,
    config_home: PathBuf,
    redis_port: u16,
    rate_limit_ports: [u16; 3],
    rate_limit_runs: u32,
    // Held (locked) for the life of the control plane: the fixed ports are ours.
    _ports: File,
}

impl HostControlPlane {
    /// Starts Redis, the controller (configHome `config_home`, whose `certs/` must hold the
    /// tree already: the controller generates its own if any of `certs/envoy`'s files is
    /// missing) and the rate limit, and waits (bounded) until the controller's xDS servers
    /// accept connections and the rate limit's xDS client has connected.
    pub async fn start(bins: &HostBinaries, config_home: &Path) -> Result<Self, Error> {
        let lock = lock_fixed_ports().await?;
        let mut procs = Procs::new()?;
        let [redis_port, rl_grpc, rl_http, rl_debug, admin] = free_ports::<5>()?;
        procs.spawn(
            "redis",
            &bins.redis,
            &[
                "--port".into(),
                redis_port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
                "--dir".into(),
                procs.dir().display().to_string(),
            ],
        )?;
        let config = procs.dir().join("envoy-gateway.yaml");
        let resources = procs.dir().join("resources");
        for dir in ["resources", "data", "state", "runtime"] {
            let path = procs.dir().join(dir);
            std::fs::create_dir_all(&path)
                .map_err(io_err(format!("creating {}", path.display())))?;
        }
        let yaml = controller_config(config_home, procs.dir(), &resources, redis_port, admin);
        std::fs::write(&config, yaml).map_err(io_err(format!("writing {}", config.display())))?;
        let mut cp = HostControlPlane {
            procs,
            bins: bins.clone(),
            config_home: config_home.to_path_buf(),
            redis_port,
            rate_limit_ports: [rl_grpc, rl_http, rl_debug],
            rate_limit_runs: 0,
            _ports: lock,
        };
        wait_listening(&cp.procs, redis_port, "Redis").await?;
        cp.procs.spawn(
            "envoy-gateway",
            &bins.controller,
            &[
                "server".into(),
                "--config-path".into(),
                config.display().to_string(),
            ],
        )?;
        for port in [XDS_PORT, RATE_LIMIT_XDS_PORT, WASM_PORT] {
            wait_listening(&cp.procs, port, "Envoy Gateway's controller").await?;
        }
        cp.start_rate_limit().await?;
        Ok(cp)
    }

    /// `<configHome>/certs`, the tree the controller and the rate limit read.
    pub fn certs(&self) -> PathBuf {
        self.config_home.join("certs")
    }

    /// Where the rate limit serves gRPC (TLS, its certificate hot-reloaded).
    pub fn rate_limit_grpc(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.rate_limit_ports[0]))
    }

    /// How many times the rate limit has been started.
    pub fn rate_limit_starts(&self) -> u32 {
        self.rate_limit_runs
    }

    /// Restarts the rate limit, as `kubectl rollout restart` rolls its Deployment: a new
    /// process started beside the old one (the rate limit's listeners set `SO_REUSEPORT`,
    /// so both serve the same ports, as two pods behind one Service), waited for (bounded)
    /// until it serves gRPC and its xDS client has connected to the controller with the
    /// files as they are now, and only then the old one killed by PID.
    pub async fn restart_rate_limit(&mut self) -> Result<(), Error> {
        let old = format!("ratelimit-{}", self.rate_limit_runs);
        self.start_rate_limit().await?;
        self.procs.stop(&old);
        Ok(())
    }

    /// Fails with its log's end if a program has exited.
    pub fn check_alive(&self) -> Result<(), Error> {
        self.procs.check_alive()
    }

    /// The log of the controller, or of the rate limit's `n`th run (1-based): `"envoy-
    /// gateway"`, `"ratelimit-N"`, `"redis"`.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.procs.log(name)).unwrap_or_default()
    }

    async fn start_rate_limit(&mut self) -> Result<(), Error> {
        self.rate_limit_runs += 1;
        let name = format!("ratelimit-{}", self.rate_limit_runs);
        let runtime = self.procs.dir().join("ratelimit-runtime");
        std::fs::create_dir_all(runtime.join("ratelimit"))
            .map_err(io_err(format!("creating {}", runtime.display())))?;
        let certs = self.certs().join("envoy-rate-limit");
        let file = |f: &str| certs.join(f).display().to_string();
        let [grpc, http, debug] = self.rate_limit_ports;
        // As `internal/infrastructure/kubernetes/ratelimit/resource.go` sets them (its
        // `GRPC_SERVER_TLS_CA_CERT` included: ratelimit never reads that name), with
        // loopback addresses and free ports, Redis over TCP, and the SAN the xDS client
        // verifies (in a cluster, the host of the controller's Service URL).
        let env: Vec<(&str, String)> = vec![
            ("HOST", "127.0.0.1".into()),
            ("PORT", http.to_string()),
            ("DEBUG_HOST", "127.0.0.1".into()),
            ("DEBUG_PORT", debug.to_string()),
            ("GRPC_HOST", "127.0.0.1".into()),
            ("GRPC_PORT", grpc.to_string()),
            ("RUNTIME_ROOT", runtime.display().to_string()),
            ("RUNTIME_SUBDIRECTORY", "ratelimit".into()),
            ("RUNTIME_IGNOREDOTFILES", "true".into()),
            ("RUNTIME_WATCH_ROOT", "false".into()),
            ("LOG_LEVEL", "info".into()),
            ("USE_STATSD", "false".into()),
            ("CONFIG_TYPE", "GRPC_XDS_SOTW".into()),
            (
                "CONFIG_GRPC_XDS_SERVER_URL",
                format!("127.0.0.1:{RATE_LIMIT_XDS_PORT}"),
            ),
            ("CONFIG_GRPC_XDS_NODE_ID", "envoy-ratelimit".into()),
            (
                "CONFIG_GRPC_XDS_SERVER_TLS_SAN",
                CONTROLLER_SERVER_NAME.into(),
            ),
            ("GRPC_SERVER_USE_TLS", "true".into()),
            ("GRPC_SERVER_TLS_CERT", file("tls.crt")),
            ("GRPC_SERVER_TLS_KEY", file("tls.key")),
            ("GRPC_SERVER_TLS_CA_CERT", file("ca.crt")),
            ("CONFIG_GRPC_XDS_SERVER_USE_TLS", "true".into()),
            ("CONFIG_GRPC_XDS_CLIENT_TLS_CERT", file("tls.crt")),
            ("CONFIG_GRPC_XDS_CLIENT_TLS_KEY", file("tls.key")),
            ("CONFIG_GRPC_XDS_SERVER_TLS_CACERT", file("ca.crt")),
            ("FORCE_START_WITHOUT_INITIAL_CONFIG", "true".into()),
            ("REDIS_SOCKET_TYPE", "tcp".into()),
            ("REDIS_URL", format!("127.0.0.1:{}", self.redis_port)),
        ];
        // Procs passes no environment of its own: `env` runs the program with exactly this.
        let mut args = vec!["-i".to_owned(), "PATH=/usr/bin:/bin".to_owned()];
        args.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        args.push(self.bins.ratelimit.display().to_string());
        self.procs.spawn(&name, Path::new("/usr/bin/env"), &args)?;
        let deadline = Deadline::new(
            format!(
                "the rate limit ({name}) to serve gRPC and connect to the controller's xDS server"
            ),
            START_TIMEOUT,
        );
        loop {
            let log = self.log(&name);
            if log.contains(RATE_LIMIT_GRPC_LISTENING) && log.contains(RATE_LIMIT_XDS_CONNECTED) {
                return Ok(());
            }
            self.procs.check_alive()?;
            deadline.tick().await?;
        }
    }
}

/// The controller's configuration: standalone mode (provider Custom, File resources from an
/// empty folder, Host infrastructure with its four folders set), the rate limit's Redis
/// backend, the admin server on a free loopback port.
fn controller_config(
    config_home: &Path,
    dir: &Path,
    resources: &Path,
    redis_port: u16,
    admin_port: u16,
) -> String {
    let q = |p: &Path| serde_json::Value::from(p.display().to_string()).to_string();
    format!(
        r#"apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyGateway
gateway:
  controllerName: gateway.envoyproxy.io/gatewayclass-controller
provider:
  type: Custom
  custom:
    resource:
      type: File
      file:
        paths: [{resources}]
    infrastructure:
      type: Host
      host:
        configHome: {config_home}
        dataHome: {data}
        stateHome: {state}
        runtimeDir: {runtime}
rateLimit:
  backend:
    type: Redis
    redis:
      url: redis://127.0.0.1:{redis_port}
admin:
  address:
    host: 127.0.0.1
    port: {admin_port}
logging:
  level:
    default: info
"#,
        resources = q(resources),
        config_home = q(config_home),
        data = q(&dir.join("data")),
        state = q(&dir.join("state")),
        runtime = q(&dir.join("runtime")),
    )
}

/// Takes the machine-wide lock of the controller's fixed ports, waiting (bounded) while
/// another control plane holds it.
async fn lock_fixed_ports() -> Result<File, Error> {
    let path = std::env::temp_dir().join("certrotate-envoy-gateway-host-ports.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    let deadline = Deadline::new(
        format!(
            "the lock of Envoy Gateway's fixed ports ({}; another live test holds it)",
            path.display()
        ),
        LOCK_TIMEOUT,
    );
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => deadline.tick().await?,
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io_err(format!("locking {}", path.display()))(e));
            }
        }
    }
}

/// Waits (bounded) until 127.0.0.1:`port` accepts a TCP connection, failing early if a
/// program has exited.
async fn wait_listening(procs: &Procs, port: u16, what: &str) -> Result<(), Error> {
    let deadline = Deadline::new(
        format!("{what} to listen on 127.0.0.1:{port}"),
        START_TIMEOUT,
    );
    loop {
        procs.check_alive()?;
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        deadline.tick().await?;
    }
}

/// What `certrotate rotate --restart-command WORKLOAD=ARGV` runs to have a test restart
/// a workload: a small `sh` script that files a request in a folder and waits (at most
/// 60 s) until the test says it is done, then exits 0; so the run goes on only once the
/// restart is over, as with `systemctl restart`. The test serves requests with
/// [`RestartDoor::pending`] and [`RestartDoor::done`].
#[derive(Debug)]
pub struct RestartDoor {
    dir: PathBuf,
    script: PathBuf,
}

/// The request script: `restart.sh WORKLOAD`.
const RESTART_SCRIPT: &str = r#"set -eu
dir=$(dirname "$0")/requests
id=$$
printf '%s\n' "$1" >"$dir/$id.tmp"
mv "$dir/$id.tmp" "$dir/$id.request"
i=0
while [ ! -e "$dir/$id.done" ]; do
  i=$((i + 1))
  [ "$i" -le 1200 ] || { echo "restart of $1: no answer in 60 s" >&2; exit 1; }
  sleep 0.05
done
rm -f "$dir/$id.done"
"#;

impl RestartDoor {
    /// Writes the script and its request folder into `dir`.
    pub fn new(dir: &Path) -> Result<Self, Error> {
        let requests = dir.join("requests");
        std::fs::create_dir_all(&requests)
            .map_err(io_err(format!("creating {}", requests.display())))?;
        let script = dir.join("restart.sh");
        std::fs::write(&script, RESTART_SCRIPT)
            .map_err(io_err(format!("writing {}", script.display())))?;
        Ok(Self {
            dir: requests,
            script,
        })
    }

    /// The value of `--restart-command` for `workload`: `WORKLOAD=/bin/sh 'SCRIPT' WORKLOAD`.
    pub fn command(&self, workload: &str) -> String {
        format!("{workload}=/bin/sh '{}' {workload}", self.script.display())
    }

    /// The requests filed and not yet answered: (id, workload), oldest id first.
    pub fn pending(&self) -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let id = name.strip_suffix(".request")?.to_owned();
                let workload = std::fs::read_to_string(entry.path()).ok()?;
                Some((id, workload.trim().to_owned()))
            })
            .collect();
        found.sort();
        found
    }

    /// Answers request `id`: its command exits 0.
    pub fn done(&self, id: &str) -> Result<(), Error> {
        let request = self.dir.join(format!("{id}.request"));
        std::fs::remove_file(&request)
            .map_err(io_err(format!("removing {}", request.display())))?;
        let done = self.dir.join(format!("{id}.done"));
        std::fs::write(&done, "").map_err(io_err(format!("writing {}", done.display())))
    }
}
