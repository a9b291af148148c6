//! Local mode: Secrets as folders, the way the kubelet mounts them or the way Envoy
//! Gateway's standalone mode reads them ([`DirStore`], [`DirLayout`]), confined beneath DIR.

mod confined;
mod layout;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use certrotate_core::plan::{
    ObjectRef, ObservedSecret, ObservedWebhook, ObservedWorkload, WebhookRef, WorkloadRef,
    WorkloadSelector,
};
use certrotate_core::profile::{validate_label, validate_subdomain};

use crate::error::StoreError;
use crate::store::{
    NewSecret, SecretStore, SecretUpdate, SecretWrite, Store, WebhookStore, WorkloadStore,
};
use confined::{Folder, Kind};
use layout::{Filled, SecretFolder};

/// The most bytes read from one file.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Local mode: Secrets as folders, the way the kubelet mounts them.
///
/// `DIR/NAMESPACE/NAME/` holds one file per key, like a mounted Secret volume, using the
/// kubelet's own atomic-writer layout: the data lives in a version folder `..vN/`, a symlink
/// `..data` points at the current one, and each `KEY` is a symlink to `..data/KEY`. A write
/// fills a new version folder, makes it durable, then swaps `..data` with one `rename`, so
/// a reader (or a crash) sees the old Secret or the new one, never half of each. Labels,
/// annotations and the type are kept in `..vN/..meta.json`.
///
/// A batch of writes ([`SecretStore::write_secrets`], what the engine sends for the Secret
/// steps of a plan) takes the lock once, fills every new version folder, makes them all
/// durable with one `syncfs` (instead of an fsync per file and folder), then swaps the
/// Secrets in order, each swap made durable (an fsync of its folder) before the next, so a
/// crash or power loss leaves the writes before some point of the batch and none after it,
/// as separate writes would; one more `syncfs` ends the batch (key links, previous versions
/// removed). A fresh install of five Secrets syncs 7 times instead of 32.
///
/// Every valid Secret key round-trips, including keys that start with one dot (`.hmac`);
/// names starting with `..` belong to the layout, as in Kubernetes.
///
/// Files are written 0600 and folders 0700. `N` is the version: an update names the
/// version it read, and an exclusive lock on `DIR/..lock` makes check-and-swap atomic across
/// processes, so two concurrent runs cannot silently overwrite each other. Readers do not
/// take it: a read that a writer's swap raced (a key or the whole version removed under
/// it) reads again, and after five such races reads holding the lock shared.
///
/// A plain folder of files (what `certgen --local` writes) is read too, with a content hash
/// as its version; its first update converts it to the layout above.
///
/// # The standalone layout
///
/// With [`DirLayout::Standalone`], DIR is what Envoy Gateway's standalone mode (hosts, no
/// Kubernetes) calls `<configHome>/certs` (`~/.config/envoy-gateway/certs` since v1.6) and
/// a Secret's folder is `DIR/NAME/`, without the namespace level: the tree upstream reads,
/// `DIR/{envoy-gateway,envoy,envoy-rate-limit}/{ca.crt,tls.crt,tls.key}` and
/// `DIR/envoy-oidc-hmac/hmac-secret` (`Paths::CertDir`,
/// `internal/infrastructure/host/paths.go:68-71` in github.com/envoyproxy/gateway v1.9.0),
/// plus `DIR/envoy-gateway-ca/`, the CA Secret certrotate needs and upstream does not
/// have. Each folder holds the same `..data` swap with its files as links into it
/// (upstream and Envoy follow links; Envoy's watch sees the move of `..data`, so a
/// folder's files change at once), the same `..meta.json` (labels, annotations, the
/// rotation state), and the same guarantees below. Only upstream's names (`ca.crt`,
/// `tls.crt`, `tls.key`, `hmac-secret`: a plain folder is read for these alone) and the
/// keys certrotate wrote are the Secret's: the other files in those folders (upstream writes its SDS JSON files into
/// `DIR/envoy/`) are never read, changed or removed. The namespace of a Secret is not
/// part of its path: two Secrets of one name in two namespaces are one folder.
///
/// # Threat model
///
/// Anything under DIR may have been planted by someone else, and certrotate often runs as
/// root. So:
///
/// - **Confinement by construction.** Everything beneath DIR is opened through a
///   [`cap_std::fs::Dir`] handle, one name at a time, so no path can resolve outside DIR;
///   ambient authority is used only to open DIR itself (a link there is followed only if
///   this user or root owns it).
/// - **Only the layout's own links.** `..data` must link to a sibling `..vN`, and `KEY` to
///   `..data/KEY`; neither is ever followed here (data is read from `..vN/` directly). A
///   namespace or Secret folder that is a link, a key linking elsewhere, or a `..data`
///   with any other target is refused with a [`DirError`] naming the path.
/// - **Only regular files are read**, opened with `O_NOFOLLOW | O_NONBLOCK` and checked with
///   `fstat` (a FIFO, socket or device is refused without waiting on it), and every read
///   stops at [`MAX_FILE_BYTES`] + 1 byte, whatever the metadata says.
/// - **Trust in the directory**, as OpenSSH's `StrictModes`: DIR, its namespace, Secret and
///   version folders and every file read must belong to the running user or root and must
///   not be writable by group or others. [`TrustChecks::SkipUnsafe`] turns this off (the
///   CLI's `--insecure-skip-dir-checks`); the other rules always hold.
/// - **No orphans.** Under the lock, every write first removes the version folders `..data`
///   does not point to (a crash's leftovers may hold a CA or leaf key) and our temporary
///   links, and removes the previous version right after the swap; [`DirStore::tidy`] does
///   the same for every Secret folder under DIR before a rotation.
///
/// Workloads and webhook configurations do not exist here: restarts are reported as not
/// applicable.
#[derive(Clone, Debug)]
pub struct DirStore {
    root: PathBuf,
    trust: TrustChecks,
    layout: DirLayout,
    /// Records the points of each batch, and may stop one there as a kill would.
    #[cfg(test)]
    probe: Option<std::sync::Arc<tests::Probe>>,
}

/// Where local mode keeps a Secret beneath DIR, and which files of its folder are its.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DirLayout {
    /// `DIR/NAMESPACE/NAME/KEY`, as the kubelet mounts a Secret volume; every valid key
    /// name in the folder is the Secret's.
    #[default]
    Kubelet,
    /// `DIR/NAME/KEY`, as Envoy Gateway's standalone mode reads `<configHome>/certs`; only
    /// upstream's file names (`ca.crt`, `tls.crt`, `tls.key`, `hmac-secret`) and the keys
    /// certrotate wrote are the Secret's, other files there are left alone. See
    /// [`DirStore`].
    Standalone,
}

/// Whether local mode checks who owns and who may write DIR and what is in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustChecks {
    /// DIR, its folders and the files read must belong to this user or root and must not
    /// be writable by group or others (OpenSSH's `StrictModes`).
    #[default]
    Enforce,
    /// No ownership or mode checks. Unsafe: whoever can write in DIR chooses the CA that
    /// signs every leaf. Confinement beneath DIR, the layout's link shapes and the
    /// regular-files-only rule still hold.
    SkipUnsafe,
}

/// Why local mode refused or failed an operation on a path beneath DIR.
///
/// Messages name the path and never quote a file's content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirError {
    /// An I/O error.
    #[error("{}: {error}", path.display())]
    Io {
        /// Where.
        path: PathBuf,
        /// The cause (kept in the message: a [`StoreError`] carries this error as text).
        error: std::io::Error,
    },
    /// A symbolic link where the layout has none of its own.
    #[error(
        "{}: is a symbolic link; local mode follows none (only ..data -> ..vN and KEY -> ..data/KEY belong to the layout)",
        path.display()
    )]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Something other than a folder where a folder was expected.
    #[error("{}: is {found}, not a folder", path.display())]
    NotAFolder {
        /// Where.
        path: PathBuf,
        /// What was found.
        found: &'static str,
    },
    /// Something other than a regular file where a file was to be read.
    #[error("{}: is {found}, not a regular file; refusing to read it", path.display())]
    NotAFile {
        /// Where.
        path: PathBuf,
        /// What was found.
        found: &'static str,
    },
    /// A file or folder that others could have planted or changed.
    #[error(
        "{}: {why}; refusing to trust it (a folder or file in local mode must belong to this user or root and be writable by nobody else; skipping this check, TrustChecks::SkipUnsafe, is unsafe)",
        path.display()
    )]
    Untrusted {
        /// Where.
        path: PathBuf,
        /// Why.
        why: Untrusted,
    },
    /// A file larger than [`MAX_FILE_BYTES`].
    #[error("{}: more than the limit of {limit} bytes", path.display())]
    TooLarge {
        /// Where.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// Another run held `DIR/..lock` for longer than a run is ever expected to.
    #[error(
        "{}: another certrotate run has held this lock for {}s; if none is running, a \
         process that hung holds it (find it with `fuser {}`)",
        path.display(), waited.as_secs(), path.display()
    )]
    LockBusy {
        /// The lock file.
        path: PathBuf,
        /// How long this run waited.
        waited: std::time::Duration,
    },
    /// An entry of the layout in a shape it never has.
    #[error("{}: {problem}", path.display())]
    Layout {
        /// Where.
        path: PathBuf,
        /// What is wrong.
        problem: LayoutProblem,
    },
}

/// What is wrong with an entry of a Secret folder's layout.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutProblem {
    /// `..data` links anywhere but a sibling `..vN`.
    #[error("links to {target:?}; the layout's only shape is a sibling ..vN")]
    DataTarget {
        /// The link's target, as stored.
        target: PathBuf,
    },
    /// A key links anywhere but `..data/KEY`.
    #[error("links to {target:?}; the layout's only shape is ..data/{key}")]
    KeyTarget {
        /// The key.
        key: String,
        /// The link's target, as stored.
        target: PathBuf,
    },
    /// `..data` is not a link.
    #[error("is {found}, not the layout's link")]
    DataNotALink {
        /// What was found.
        found: &'static str,
    },
    /// A key's name holds something that is neither a file nor the layout's link.
    #[error("is {found} where a key was expected")]
    NotAKey {
        /// What was found.
        found: &'static str,
    },
    /// Part of the version `..data` names is missing (and `..data` did not move on).
    #[error("{what}")]
    Missing {
        /// What is missing.
        what: &'static str,
    },
    /// `..meta.json` is not the expected JSON object (where, never what: it may be anything).
    #[error("not the expected JSON object (line {line}, column {column})")]
    Meta {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A data key Kubernetes would not allow.
    #[error("{reason}")]
    InvalidKey {
        /// Why.
        reason: String,
    },
    /// `..data` moved on under every read.
    #[error("changed under {reads} reads in a row")]
    KeptChanging {
        /// Reads tried.
        reads: usize,
    },
    /// A folder just created is gone (someone else is changing DIR).
    #[error("vanished right after being created")]
    Vanished,
}

/// Why a path under DIR is not trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Untrusted {
    /// Owned by another user.
    #[error("owned by uid {uid}, not by this user (uid {euid}) or root")]
    Owner {
        /// The owner.
        uid: u32,
        /// The running user.
        euid: u32,
    },
    /// Group or others may write it.
    #[error("writable by group or others (mode {mode:04o})")]
    Writable {
        /// The permission bits.
        mode: u32,
    },
}

impl DirError {
    pub(crate) fn io(path: &Path, error: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            error,
        }
    }
}

impl From<DirError> for StoreError {
    fn from(e: DirError) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

impl DirStore {
    /// A store rooted at `root` (created on first write), with the ownership checks on.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            trust: TrustChecks::Enforce,
            layout: DirLayout::Kubelet,
            #[cfg(test)]
            probe: None,
        }
    }

    /// Sets where Secrets lie beneath DIR (see [`DirLayout`]; the kubelet's by default).
    pub fn with_layout(mut self, layout: DirLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Where Secrets lie beneath DIR.
    pub fn layout(&self) -> DirLayout {
        self.layout
    }

    /// Sets whether DIR's ownership and modes are checked (see [`TrustChecks`]).
    pub fn with_trust_checks(mut self, trust: TrustChecks) -> Self {
        self.trust = trust;
        self
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of a Secret.
    pub fn secret_dir(&self, secret: &ObjectRef) -> Result<PathBuf, StoreError> {
        validate_names(secret)?;
        Ok(match self.layout {
            DirLayout::Kubelet => self.root.join(&secret.namespace).join(&secret.name),
            DirLayout::Standalone => self.root.join(&secret.name),
        })
    }

    /// What names a Secret's folder: two writes of one batch with the same key write one
    /// folder.
    fn folder_of<'a>(&self, secret: &'a ObjectRef) -> (Option<&'a str>, &'a str) {
        match self.layout {
            DirLayout::Kubelet => (Some(&secret.namespace), &secret.name),
            DirLayout::Standalone => (None, &secret.name),
        }
    }

    /// Removes, under the lock, every version folder that its `..data` does not point to
    /// and every temporary link of ours, in every Secret folder under DIR (every folder of
    /// every namespace folder in the kubelet layout, every folder of DIR in the standalone
    /// one), and restores key links a crash left missing: after a crash, what a rerun does
    /// first, so no old key stays behind. Nothing is followed: a link or file where a
    /// namespace or Secret folder would be is left alone. Does nothing if DIR does not
    /// exist, or if this process may not write in it (then it cannot write a Secret
    /// either).
    pub fn tidy(&self) -> Result<(), StoreError> {
        let Some(root) = Folder::open_root(&self.root, self.trust, false)? else {
            return Ok(());
        };
        let _lock = match root.lock() {
            Ok(lock) => lock,
            // Nothing can be removed, and nothing written, by this process (a read-only
            // filesystem, or a user who may only read DIR): the next run that can write
            // sweeps, before its first write.
            Err(DirError::Io { error, .. }) if cannot_write(&error) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let sweep_in = |parent: &Folder| -> Result<(), DirError> {
            for name in folder_names(parent)? {
                if let Some(secret) = parent.open_folder(&name, false)? {
                    SecretFolder(secret, self.layout).sweep()?;
                }
            }
            Ok(())
        };
        match self.layout {
            DirLayout::Kubelet => {
                for namespace in folder_names(&root)? {
                    if let Some(namespace) = root.open_folder(&namespace, false)? {
                        sweep_in(&namespace)?;
                    }
                }
            }
            DirLayout::Standalone => sweep_in(&root)?,
        }
        Ok(())
    }

    /// The Secret's folder, opened one name at a time from DIR; `None` if absent.
    fn open(&self, root: &Folder, secret: &ObjectRef) -> Result<Option<SecretFolder>, DirError> {
        let namespace;
        let parent = match self.layout {
            DirLayout::Kubelet => {
                let Some(folder) = root.open_folder(&secret.namespace, false)? else {
                    return Ok(None);
                };
                namespace = folder;
                &namespace
            }
            DirLayout::Standalone => root,
        };
        Ok(parent
            .open_folder(&secret.name, false)?
            .map(|folder| SecretFolder(folder, self.layout)))
    }

    /// Writes a batch: see [`SecretStore::write_secrets`]. A Secret named twice is
    /// written in parts (its second write was planned from the first one's version).
    fn write_batch(&self, writes: &[SecretWrite]) -> Vec<Result<String, StoreError>> {
        let mut results = Vec::with_capacity(writes.len());
        let mut rest = writes;
        while !rest.is_empty() {
            let mut seen = BTreeSet::new();
            let split = rest
                .iter()
                .position(|w| !seen.insert(self.folder_of(w.secret())))
                .unwrap_or(rest.len());
            let (part, later) = rest.split_at(split);
            let answered = self.write_part(part);
            let done = answered.len() == part.len() && answered.iter().all(Result::is_ok);
            results.extend(answered);
            if !done {
                break;
            }
            rest = later;
        }
        results
    }

    /// Writes a batch that names each Secret once, under the lock: every Secret checked and
    /// its new version filled (up to the first failure), all of them made durable at once,
    /// then swapped in order, each swap durable before the next, and one sync at the end.
    fn write_part(&self, writes: &[SecretWrite]) -> Vec<Result<String, StoreError>> {
        // A name that cannot be a Secret's, first in the batch: refused before DIR is
        // created or locked (later ones are refused in turn, after the writes before them).
        if let Some(Err(e)) = writes.first().map(|w| validate_names(w.secret())) {
            return vec![Err(e)];
        }
        let (root, _lock) = match self.open_root_locked() {
            Ok(locked) => locked,
            Err(e) => return vec![Err(e)],
        };
        let root = &root;
        let mut filled = Vec::with_capacity(writes.len());
        let mut failed = None;
        for write in writes {
            match self.fill(root, write) {
                Ok(folder) => {
                    self.at(|| format!("fill {} {}", write.secret(), folder.1.name));
                    filled.push(folder);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if filled.is_empty() {
            return failed.map(Err).into_iter().collect();
        }
        // Every new version durable before any `..data` moves: a swap that reaches the
        // disk always names a whole folder.
        if let Err(e) = sync_filesystems(root, filled.iter().map(|(folder, _)| folder)) {
            for (folder, version) in &filled {
                folder.discard(&version.name);
            }
            return vec![Err(e.into())];
        }
        self.at(|| "sync".to_owned());
        let mut results = Vec::with_capacity(writes.len());
        for (write, (folder, version)) in writes.iter().zip(&filled) {
            let swapped = (|| {
                folder.swap(version)?;
                self.at(|| format!("swap {}", write.secret()));
                // Durable before the next Secret's swap: a crash never keeps a later write
                // of the batch without this one (the last write records the phase).
                folder.0.sync()?;
                self.at(|| format!("fsync {}", write.secret()));
                folder.finish(version)?;
                self.at(|| format!("finish {}", write.secret()));
                Ok::<_, DirError>(())
            })();
            if let Err(e) = swapped {
                results.push(Err(e.into()));
                break;
            }
            results.push(Ok(version.number.to_string()));
        }
        let stopped = results.last().is_some_and(Result::is_err);
        if stopped {
            // A swap failed (a full disk, say): what was filled and not swapped in, and the
            // previous versions of what was, are leftovers; remove them now (the space comes
            // back at once), keeping whatever `..data` names.
            for (folder, _) in &filled[results.len() - 1..] {
                let _ = folder.sweep();
            }
        }
        // The key links and the removal of the previous versions (and of the versions a
        // failure left), durable once for the whole batch. The swaps already are.
        let synced = sync_filesystems(root, filled.iter().map(|(folder, _)| folder));
        if let Err(e) = synced {
            if let Some(last) = results.last_mut() {
                *last = Err(e.into());
            }
            return results;
        }
        self.at(|| "sync".to_owned());
        if !stopped && let Some(e) = failed {
            results.push(Err(e));
        }
        results
    }

    /// Opens (creating) DIR and takes the lock.
    fn open_root_locked(&self) -> Result<(Folder, std::fs::File), StoreError> {
        let root =
            Folder::open_root(&self.root, self.trust, true)?.ok_or_else(|| DirError::Layout {
                path: self.root.clone(),
                problem: LayoutProblem::Vanished,
            })?;
        let lock = root.lock()?;
        Ok((root, lock))
    }

    /// Opens (creating) the Secret's folder, removes a crash's leftovers from it, checks
    /// the write against what is there (exists, version) and fills its new version.
    fn fill(
        &self,
        root: &Folder,
        write: &SecretWrite,
    ) -> Result<(SecretFolder, Filled), StoreError> {
        let secret = write.secret();
        validate_names(secret)?;
        let created = |parent: &Folder, name: &str| {
            parent
                .open_folder(name, true)?
                .ok_or_else(|| DirError::Layout {
                    path: parent.child(name),
                    problem: LayoutProblem::Vanished,
                })
        };
        let namespace;
        let parent = match self.layout {
            DirLayout::Kubelet => {
                namespace = created(root, &secret.namespace)?;
                &namespace
            }
            DirLayout::Standalone => root,
        };
        let folder = SecretFolder(created(parent, &secret.name)?, self.layout);
        folder.sweep()?;
        let (next, value) = match write {
            SecretWrite::Create { new, .. } => {
                if folder.read()?.is_some() {
                    return Err(StoreError::AlreadyExists);
                }
                let mut value = ObservedSecret::new(&new.secret_type, new.data.clone(), "");
                value.labels = new.labels.clone();
                value.annotations = new.annotations.clone();
                (1, value)
            }
            SecretWrite::Update {
                expected_version,
                update,
                ..
            } => {
                let Some(mut current) = folder.read()? else {
                    return Err(StoreError::NotFound);
                };
                if current.version != *expected_version {
                    return Err(StoreError::Conflict);
                }
                update.apply_to(&mut current);
                (folder.current_number()? + 1, current)
            }
        };
        let filled = folder.fill(next, &value)?;
        Ok((folder, filled))
    }

    /// A point of a batch: tests record the order of the points, and may stop the batch
    /// at one as a kill would (nothing after it runs).
    #[cfg_attr(not(test), inline(always))]
    fn at(&self, _point: impl FnOnce() -> String) {
        #[cfg(test)]
        if let Some(probe) = &self.probe {
            probe.at(_point());
        }
    }
}

/// Makes everything written beneath DIR durable: one `syncfs` per filesystem that DIR and
/// the batch's Secret folders are on (one, unless a namespace or Secret folder is a mount
/// point).
fn sync_filesystems<'a>(
    root: &Folder,
    secrets: impl IntoIterator<Item = &'a SecretFolder>,
) -> Result<(), DirError> {
    let mut synced = BTreeSet::new();
    for folder in std::iter::once(root).chain(secrets.into_iter().map(|s| &s.0)) {
        if synced.insert(folder.device()?) {
            folder.sync_filesystem()?;
        }
    }
    Ok(())
}

fn cannot_write(error: &std::io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        Errno::from_io_error(error),
        Some(Errno::ROFS | Errno::ACCESS | Errno::PERM)
    )
}

/// The names in `folder` that may be namespace or Secret folders: real folders (never
/// links) with names that are not the layout's.
fn folder_names(folder: &Folder) -> Result<Vec<String>, DirError> {
    let mut names = Vec::new();
    for name in folder.names()? {
        let Ok(name) = name.into_string() else {
            continue;
        };
        if !name.starts_with("..") && folder.kind(&name)? == Some(Kind::Folder) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn validate_names(secret: &ObjectRef) -> Result<(), StoreError> {
    validate_label(&secret.namespace)
        .map_err(|r| StoreError::Backend(format!("namespace {r}").into()))?;
    validate_subdomain(&secret.name)
        .map_err(|r| StoreError::Backend(format!("name {r}").into()))?;
    Ok(())
}

impl SecretStore for DirStore {
    async fn read_secret(&self, secret: &ObjectRef) -> Result<Option<ObservedSecret>, StoreError> {
        validate_names(secret)?;
        let Some(root) = Folder::open_root(&self.root, self.trust, false)? else {
            return Ok(None);
        };
        let Some(folder) = self.open(&root, secret)? else {
            return Ok(None);
        };
        match folder.read() {
            // Writers kept swapping versions under the lock-free reads: read once more
            // holding the lock shared, which waits for the writer and keeps the next out.
            Err(
                e @ DirError::Layout {
                    problem: LayoutProblem::KeptChanging { .. },
                    ..
                },
            ) => match root.lock_shared()? {
                Some(_shared) => Ok(folder.read()?),
                None => Err(e.into()),
            },
            read => Ok(read?),
        }
    }

    async fn create_secret(
        &self,
        secret: &ObjectRef,
        new: &NewSecret,
    ) -> Result<String, StoreError> {
        let write = SecretWrite::Create {
            secret: secret.clone(),
            new: new.clone(),
        };
        only(self.write_batch(std::slice::from_ref(&write)))
    }

    async fn update_secret(
        &self,
        secret: &ObjectRef,
        expected_version: &str,
        update: &SecretUpdate,
    ) -> Result<String, StoreError> {
        let write = SecretWrite::Update {
            secret: secret.clone(),
            expected_version: expected_version.to_owned(),
            update: update.clone(),
        };
        only(self.write_batch(std::slice::from_ref(&write)))
    }

    async fn write_secrets(&self, writes: &[SecretWrite]) -> Vec<Result<String, StoreError>> {
        self.write_batch(writes)
    }
}

/// The result of a batch of one write.
fn only(results: Vec<Result<String, StoreError>>) -> Result<String, StoreError> {
    results
        .into_iter()
        .next()
        .unwrap_or_else(|| Err(StoreError::Backend("the write was not made".into())))
}

impl WorkloadStore for DirStore {
    async fn read_workload(&self, _: &WorkloadRef) -> Result<Option<ObservedWorkload>, StoreError> {
        Err(StoreError::NotApplicable("local mode has no workloads"))
    }

    async fn list_workloads(
        &self,
        _: &WorkloadSelector,
    ) -> Result<Vec<(WorkloadRef, ObservedWorkload)>, StoreError> {
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
        match self.layout {
            DirLayout::Kubelet => format!("directory {}", self.root.display()),
            DirLayout::Standalone => {
                format!("directory {} (standalone layout)", self.root.display())
            }
        }
    }

    fn has_cluster_objects(&self) -> bool {
        false
    }

    fn io(&self) -> crate::store::IoKind {
        crate::store::IoKind::Blocking
    }
}
