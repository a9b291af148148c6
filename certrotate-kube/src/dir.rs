//! Local mode: Secrets as folders, the way the kubelet mounts them.
//!
//! `DIR/NAMESPACE/NAME/` holds one file per key, like a mounted Secret volume, using the
//! kubelet's own atomic-writer layout: the data lives in a version folder `..vN/`, a symlink
//! `..data` points at the current one, and each `KEY` is a symlink to `..data/KEY`. A write
//! fills and fsyncs a new version folder, then swaps `..data` with one `rename`, so a reader
//! (or a crash) sees the old Secret or the new one, never half of each. Labels, annotations
//! and the type are kept in `..vN/..meta.json` (Secret keys may not start with `..`).
//!
//! Files are written 0600 and folders 0700. `N` is the version: an update names the
//! version it read, and an exclusive lock on `DIR/..lock` makes check-and-swap atomic across
//! processes, so two concurrent runs cannot silently overwrite each other.
//!
//! A plain folder of files (what `certgen --local` writes) is read too, with a content hash
//! as its version; its first update converts it to the layout above.
//!
//! Workloads and webhook configurations do not exist here: restarts are reported as not
//! applicable.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};

use certrotate_core::plan::{
    ObjectRef, ObservedSecret, ObservedWebhook, ObservedWorkload, WebhookRef, WorkloadRef,
};
use certrotate_core::{Fingerprint, profile::validate_label, profile::validate_subdomain};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::store::{NewSecret, SecretStore, SecretUpdate, Store, WebhookStore, WorkloadStore};

/// The most bytes read from one file.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

const DATA: &str = "..data";
const META: &str = "..meta.json";

/// A store of Secrets in a directory.
#[derive(Clone, Debug)]
pub struct DirStore {
    root: PathBuf,
}

#[derive(Serialize, Deserialize, Default)]
struct Meta {
    #[serde(rename = "type")]
    secret_type: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl DirStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of a Secret.
    pub fn secret_dir(&self, secret: &ObjectRef) -> Result<PathBuf, StoreError> {
        validate_label(&secret.namespace).map_err(|r| backend(format!("namespace {r}")))?;
        validate_subdomain(&secret.name).map_err(|r| backend(format!("name {r}")))?;
        Ok(self.root.join(&secret.namespace).join(&secret.name))
    }

    fn lock(&self) -> Result<File, StoreError> {
        mkdirs(&self.root)?;
        let path = self.root.join("..lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        file.lock().map_err(|e| io(&path, e))?;
        Ok(file)
    }

    fn read(&self, dir: &Path) -> Result<Option<ObservedSecret>, StoreError> {
        match fs::read_link(dir.join(DATA)) {
            Ok(target) => {
                let version_dir = dir.join(&target);
                let version = target
                    .to_str()
                    .and_then(|t| t.strip_prefix("..v"))
                    .ok_or_else(|| {
                        backend(format!(
                            "{}: unexpected ..data target {target:?}",
                            dir.display()
                        ))
                    })?
                    .to_owned();
                let meta_path = version_dir.join(META);
                let meta: Meta = serde_json::from_slice(&read_limited(&meta_path)?)
                    .map_err(|e| backend(format!("{}: {e}", meta_path.display())))?;
                let data = read_files(&version_dir)?;
                let mut s = ObservedSecret::new(meta.secret_type, data, version);
                s.labels = meta.labels;
                s.annotations = meta.annotations;
                Ok(Some(s))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !dir.is_dir() {
                    return Ok(None);
                }
                // A plain folder (certgen --local), or one whose first write never finished.
                let data = read_files(dir)?;
                if data.is_empty() {
                    return Ok(None);
                }
                let version = plain_version(&data);
                Ok(Some(ObservedSecret::new("Opaque", data, version)))
            }
            Err(e) => Err(io(&dir.join(DATA), e)),
        }
    }

    /// Writes a complete new version of a Secret and swaps it in.
    fn write(&self, dir: &Path, next: u64, secret: &ObservedSecret) -> Result<String, StoreError> {
        mkdirs(dir)?;
        let name = format!("..v{next}");
        let version_dir = dir.join(&name);
        if version_dir.exists() {
            // Left by a crash before its swap: never current, safe to replace.
            fs::remove_dir_all(&version_dir).map_err(|e| io(&version_dir, e))?;
        }
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&version_dir)
            .map_err(|e| io(&version_dir, e))?;
        let filled = (|| {
            for (key, value) in &secret.data {
                check_key(key)?;
                write_file(&version_dir.join(key), value)?;
            }
            let meta = Meta {
                secret_type: secret.secret_type.clone(),
                labels: secret.labels.clone(),
                annotations: secret.annotations.clone(),
            };
            let meta_bytes =
                serde_json::to_vec_pretty(&meta).map_err(|e| backend(e.to_string()))?;
            write_file(&version_dir.join(META), &meta_bytes)?;
            sync_dir(&version_dir)
        })();
        if let Err(e) = filled {
            // Never current; removing it now gives back the space (disk full) at once.
            let _ = fs::remove_dir_all(&version_dir);
            return Err(e);
        }

        let previous = fs::read_link(dir.join(DATA)).ok();
        let tmp = dir.join("..data_tmp");
        let _ = fs::remove_file(&tmp);
        symlink(&name, &tmp).map_err(|e| io(&tmp, e))?;
        fs::rename(&tmp, dir.join(DATA)).map_err(|e| io(&dir.join(DATA), e))?;
        sync_dir(dir)?;

        // The per-key symlinks consumers read; `..data` is the source of truth.
        for key in secret.data.keys() {
            let link = dir.join(key);
            let tmp = dir.join(format!("..{key}_tmp"));
            let _ = fs::remove_file(&tmp);
            symlink(Path::new(DATA).join(key), &tmp).map_err(|e| io(&tmp, e))?;
            fs::rename(&tmp, &link).map_err(|e| io(&link, e))?;
        }
        for entry in fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let entry = entry.map_err(|e| io(dir, e))?;
            let file_name = entry.file_name();
            let Some(n) = file_name.to_str() else {
                continue;
            };
            if !n.starts_with("..") && !secret.data.contains_key(n) {
                fs::remove_file(entry.path()).map_err(|e| io(&entry.path(), e))?;
            }
        }
        sync_dir(dir)?;
        if let Some(prev) = previous.filter(|p| *p != Path::new(&name)) {
            let _ = fs::remove_dir_all(dir.join(prev));
        }
        Ok(next.to_string())
    }
}

fn current_number(version: &str) -> u64 {
    version.parse().unwrap_or(0)
}

fn plain_version(data: &BTreeMap<String, Vec<u8>>) -> String {
    let mut all = Vec::new();
    for (k, v) in data {
        all.extend_from_slice(k.as_bytes());
        all.push(0);
        all.extend_from_slice(Fingerprint::of(v).as_bytes());
    }
    format!("plain-{}", Fingerprint::of(&all).short())
}

fn read_files(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, StoreError> {
    let mut data = BTreeMap::new();
    for entry in fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with("..") || name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_file() {
            data.insert(name, read_limited(&path)?);
        }
    }
    Ok(data)
}

fn read_limited(path: &Path) -> Result<Vec<u8>, StoreError> {
    let len = fs::metadata(path).map_err(|e| io(path, e))?.len();
    if len > MAX_FILE_BYTES {
        return Err(backend(format!(
            "{}: {len} bytes is more than the limit of {MAX_FILE_BYTES}",
            path.display()
        )));
    }
    fs::read(path).map_err(|e| io(path, e))
}

fn write_file(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io(path, e))?;
    f.write_all(contents).map_err(|e| io(path, e))?;
    f.sync_all().map_err(|e| io(path, e))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

fn mkdirs(dir: &Path) -> Result<(), StoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io(dir, e))
}

fn check_key(key: &str) -> Result<(), StoreError> {
    let ok = !key.is_empty()
        && key.len() <= 253
        && !key.starts_with("..")
        && key != "."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(backend(format!("invalid Secret key {key:?}")))
    }
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("{}: {e}", path.display()).into())
}

fn backend(message: String) -> StoreError {
    StoreError::Backend(message.into())
}

impl SecretStore for DirStore {
    async fn read_secret(&self, secret: &ObjectRef) -> Result<Option<ObservedSecret>, StoreError> {
        let dir = self.secret_dir(secret)?;
        self.read(&dir)
    }

    async fn create_secret(
        &self,
        secret: &ObjectRef,
        new: &NewSecret,
    ) -> Result<String, StoreError> {
        let dir = self.secret_dir(secret)?;
        let _lock = self.lock()?;
        if self.read(&dir)?.is_some() {
            return Err(StoreError::AlreadyExists);
        }
        let mut value = ObservedSecret::new(&new.secret_type, new.data.clone(), "");
        value.labels = new.labels.clone();
        value.annotations = new.annotations.clone();
        self.write(&dir, 1, &value)
    }

    async fn update_secret(
        &self,
        secret: &ObjectRef,
        expected_version: &str,
        update: &SecretUpdate,
    ) -> Result<String, StoreError> {
        let dir = self.secret_dir(secret)?;
        let _lock = self.lock()?;
        let Some(mut current) = self.read(&dir)? else {
            return Err(StoreError::NotFound);
        };
        if current.version != expected_version {
            return Err(StoreError::Conflict);
        }
        let next = current_number(&current.version) + 1;
        update.apply_to(&mut current);
        self.write(&dir, next, &current)
    }
}

impl WorkloadStore for DirStore {
    async fn read_workload(&self, _: &WorkloadRef) -> Result<Option<ObservedWorkload>, StoreError> {
        Err(StoreError::NotApplicable("local mode has no workloads"))
    }

    async fn restart_workload(
        &self,
        _: &WorkloadRef,
        _: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        Err(StoreError::NotApplicable("local mode has no workloads"))
    }
}

impl WebhookStore for DirStore {
    async fn read_webhook(&self, _: &WebhookRef) -> Result<Option<ObservedWebhook>, StoreError> {
        Err(StoreError::NotApplicable(
            "local mode has no webhook configurations",
        ))
    }

    async fn update_webhook(
        &self,
        _: &WebhookRef,
        _: &str,
        _: &[Vec<u8>],
    ) -> Result<String, StoreError> {
        Err(StoreError::NotApplicable(
            "local mode has no webhook configurations",
        ))
    }
}

impl Store for DirStore {
    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    fn has_cluster_objects(&self) -> bool {
        false
    }

    fn io(&self) -> crate::store::IoKind {
        crate::store::IoKind::Blocking
    }
}
