//! Reading kubeconfig files as carefully as local mode reads DIR. A kubeconfig runs
//! commands (`exec` plugins) and names files to send (`tokenFile`), so one that another
//! user can write makes root run that user's commands; and a key given by mistake as
//! `--kubeconfig` must not be echoed by the YAML parser's message.
//!
//! Each file (`--kubeconfig`, each of `$KUBECONFIG`, or `~/.kube/config`) is opened without
//! blocking (a FIFO is refused, not waited on), judged on what was opened: a regular file,
//! owned by this user or root and not writable by group or others, and read up to
//! [`MAX_KUBECONFIG_BYTES`]. Parse errors give a line and column, never the file's text.
//! Relative paths in it are made absolute from its folder, as `kubectl` (and kube-rs's
//! `Kubeconfig::read_from`) do.

use std::io::Read as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use kube::config::Kubeconfig;

/// The most bytes read from one kubeconfig file.
pub(crate) const MAX_KUBECONFIG_BYTES: u64 = 1 << 20;

/// What is wrong with a kubeconfig file: which file, and why (never its content).
#[derive(Debug, thiserror::Error)]
#[error("kubeconfig {}: {reason}", path.display())]
pub(crate) struct KubeconfigFileError {
    path: PathBuf,
    reason: String,
}

/// No kubeconfig file exists and this process does not run in a Pod (no
/// `KUBERNETES_SERVICE_HOST`): nothing says which cluster to use.
#[derive(Debug, thiserror::Error)]
#[error("no kubeconfig found (KUBECONFIG, ~/.kube/config) and not running in a cluster")]
pub struct NoKubeconfig;

fn refused(path: &Path, reason: impl Into<String>) -> KubeconfigFileError {
    KubeconfigFileError {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// The kubeconfig files to read: `explicit`, else those of `$KUBECONFIG` that exist (as
/// `kubectl`, which skips the missing ones), else `~/.kube/config` if it exists. Empty:
/// none (in-cluster configuration applies).
pub(crate) fn sources(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(path) = explicit {
        return vec![path.to_owned()];
    }
    if let Some(value) = std::env::var_os("KUBECONFIG") {
        let paths: Vec<PathBuf> = std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty() && p.exists())
            .collect();
        if !paths.is_empty() {
            return paths;
        }
    }
    std::env::home_dir()
        .map(|home| home.join(".kube").join("config"))
        .filter(|p| p.exists())
        .into_iter()
        .collect()
}

/// Reads and merges `paths` (the first file's values win, as `kubectl` merges them).
pub(crate) fn read_all(paths: &[PathBuf]) -> Result<Kubeconfig, KubeconfigFileError> {
    let mut merged: Option<Kubeconfig> = None;
    for path in paths {
        let config = read(path)?;
        merged = Some(match merged {
            None => config,
            Some(m) => m
                .merge(config)
                .map_err(|_| refused(path, "cannot be merged with the files before it"))?,
        });
    }
    Ok(merged.unwrap_or_default())
}

/// Reads one kubeconfig file, judged on the handle opened.
pub(crate) fn read(path: &Path) -> Result<Kubeconfig, KubeconfigFileError> {
    let io = |what: &str, e: std::io::Error| refused(path, format!("{what}: {e}"));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| io("cannot open", e))?;
    let meta = file.metadata().map_err(|e| io("cannot read", e))?;
    if !meta.is_file() {
        return Err(refused(
            path,
            "not a regular file (a FIFO, a device or a folder)",
        ));
    }
    let euid = rustix::process::geteuid().as_raw();
    if meta.uid() != euid && meta.uid() != 0 {
        return Err(refused(
            path,
            format!(
                "owned by uid {}, not by this user (uid {euid}) or root: its exec plugins \
                 would run as this user; run certrotate as its owner, or copy it",
                meta.uid()
            ),
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(refused(
            path,
            format!(
                "writable by group or others (mode {mode:04o}): whoever can write it \
                 chooses the commands run as this user; `chmod go-w` it"
            ),
        ));
    }
    let mut data = Vec::new();
    (&file)
        .take(MAX_KUBECONFIG_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| io("cannot read", e))?;
    if data.len() as u64 > MAX_KUBECONFIG_BYTES {
        return Err(refused(
            path,
            format!("more than the limit of {MAX_KUBECONFIG_BYTES} bytes"),
        ));
    }
    let text = std::str::from_utf8(&data).map_err(|_| refused(path, "not UTF-8 text"))?;
    if text.trim_start().starts_with("-----BEGIN ") {
        return Err(refused(
            path,
            "PEM data (a certificate or a private key?), expected a kubeconfig",
        ));
    }
    let mut config: Kubeconfig = serde_saphyr::from_multiple::<Kubeconfig>(text)
        .map_err(|e| {
            // Not `Display`: the parser's message quotes the lines of the file.
            let at = e.location().map_or_else(String::new, |l| {
                format!(" at line {}, column {}", l.line(), l.column())
            });
            refused(path, format!("not a kubeconfig (YAML error{at})"))
        })?
        .into_iter()
        .try_fold(Kubeconfig::default(), Kubeconfig::merge)
        .map_err(|_| refused(path, "its documents cannot be merged"))?;
    // Relative paths are the file's author's: resolved from where the file really is, not
    // from the folder of a link to it (another user's link to root's kubeconfig made root
    // run her `./auth.sh`).
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()));
    let real = real.ok().filter(|p| p.is_absolute());
    if let Some(folder) = real.as_deref().unwrap_or(path).parent() {
        make_paths_absolute(&mut config, folder);
    }
    Ok(config)
}

/// Relative file references are relative to the kubeconfig's folder (client-go's
/// `ResolvePaths`); an exec command only when it holds a `/` (a bare name is a `PATH`
/// lookup).
fn make_paths_absolute(config: &mut Kubeconfig, folder: &Path) {
    let absolute = |p: &mut String| {
        if Path::new(p.as_str()).is_relative() {
            *p = folder.join(p.as_str()).to_string_lossy().into_owned();
        }
    };
    for cluster in config
        .clusters
        .iter_mut()
        .filter_map(|c| c.cluster.as_mut())
    {
        cluster.certificate_authority.iter_mut().for_each(absolute);
    }
    for auth in config
        .auth_infos
        .iter_mut()
        .filter_map(|a| a.auth_info.as_mut())
    {
        auth.client_certificate.iter_mut().for_each(absolute);
        auth.client_key.iter_mut().for_each(absolute);
        auth.token_file.iter_mut().for_each(absolute);
        if let Some(command) = auth.exec.as_mut().and_then(|e| e.command.as_mut())
            && command.contains('/')
        {
            absolute(command);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    const CONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: ca.crt
users:
- name: u
  user:
    tokenFile: token
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./bin/auth
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
";

    fn write(dir: &Path, name: &str, text: &[u8], mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_good_file_is_read_with_its_paths_made_absolute() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(tmp.path(), "config", CONFIG.as_bytes(), 0o600);
        let config = read(&path).unwrap();
        let ca = config.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(
            ca.certificate_authority.as_deref(),
            Some(tmp.path().join("ca.crt").to_str().unwrap())
        );
        let user = config.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(
            user.token_file.as_deref(),
            Some(tmp.path().join("token").to_str().unwrap())
        );
        let command = user.exec.as_ref().unwrap().command.as_deref().unwrap();
        assert_eq!(command, tmp.path().join("./bin/auth").to_str().unwrap());
    }

    /// Red-team R3-3: another user's link to root's kubeconfig, whose exec command is
    /// `./auth.sh`, made root run the `auth.sh` beside her link. Relative paths are
    /// resolved from where the file is.
    #[test]
    fn relative_paths_are_resolved_from_the_file_not_a_link_to_it() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        let other = tmp.path().join("other");
        std::fs::create_dir(&real).unwrap();
        std::fs::create_dir(&other).unwrap();
        write(&real, "config", CONFIG.as_bytes(), 0o600);
        std::os::unix::fs::symlink(real.join("config"), other.join("config")).unwrap();
        let config = read(&other.join("config")).unwrap();
        let user = config.auth_infos[0].auth_info.as_ref().unwrap();
        let command = user.exec.as_ref().unwrap().command.as_deref().unwrap();
        assert_eq!(command, real.join("./bin/auth").to_str().unwrap());
    }

    /// Red-team N3: a private key given as `--kubeconfig` was printed by the parse error.
    #[test]
    fn a_key_or_junk_is_refused_without_its_content() {
        let tmp = tempfile::tempdir().unwrap();
        let key = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgsh6KlZPB1JMauhfq\n-----END PRIVATE KEY-----\n";
        let path = write(tmp.path(), "key", key.as_bytes(), 0o600);
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("PEM data"), "{error}");
        let path = write(
            tmp.path(),
            "junk",
            b"root:$6$SECRETHASH:19000:0\n- [",
            0o600,
        );
        let error = read(&path).unwrap_err().to_string();
        assert!(
            error.contains("not a kubeconfig") && !error.contains("SECRETHASH"),
            "{error}"
        );
    }

    /// Red-team N4: another user's kubeconfig ran its exec plugin as root; `/dev/zero`
    /// was read until memory ran out; a FIFO hung.
    #[test]
    fn writable_foreign_and_special_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        for mode in [0o620, 0o602, 0o666] {
            let path = write(tmp.path(), "config", CONFIG.as_bytes(), mode);
            let error = read(&path).unwrap_err().to_string();
            assert!(
                error.contains("writable by group or others"),
                "{mode:o}: {error}"
            );
        }
        let error = read(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(error.contains("not a regular file"), "{error}");
        let fifo = tmp.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let error = read(&fifo).unwrap_err().to_string();
        assert!(error.contains("not a regular file"), "{error}");
        let big = write(
            tmp.path(),
            "big",
            &vec![b'#'; (MAX_KUBECONFIG_BYTES + 1) as usize],
            0o600,
        );
        assert!(
            read(&big)
                .unwrap_err()
                .to_string()
                .contains("more than the limit")
        );
        if rustix::process::geteuid().is_root() {
            let path = write(tmp.path(), "foreign", CONFIG.as_bytes(), 0o600);
            std::os::unix::fs::chown(&path, Some(4242), None).unwrap();
            let error = read(&path).unwrap_err().to_string();
            assert!(error.contains("owned by uid 4242"), "{error}");
        }
    }
}
