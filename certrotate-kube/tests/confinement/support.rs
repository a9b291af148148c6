//! What the confinement tests share: a site with DIR and an attacker's folder beside it, trees, snapshots.

#![allow(unused_imports)]

use super::*;

// ---- support ----------------------------------------------------------------------------

/// The uid that plays the other local user.
pub(crate) const OTHER_UID: u32 = 4242;

/// A temporary folder holding DIR and, beside it, a folder an attacker would aim at, with
/// a canary file whose content must never be read.
pub(crate) struct Site {
    pub(crate) tmp: tempfile::TempDir,
    pub(crate) dir: PathBuf,
    pub(crate) outside: PathBuf,
    pub(crate) canary: String,
    pub(crate) layout: DirLayout,
}

impl Site {
    pub(crate) fn new() -> Self {
        Self::with(DirLayout::Kubelet)
    }

    /// A site whose store uses `layout`.
    pub(crate) fn with(layout: DirLayout) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("dir");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let canary = format!(
            "CANARY-{}-{:?}",
            std::process::id(),
            tmp.path().file_name().unwrap()
        );
        std::fs::write(outside.join("canary"), &canary).unwrap();
        std::fs::write(outside.join(".bashrc"), "export PS1='$ '\n").unwrap();
        std::fs::create_dir(outside.join("sub")).unwrap();
        std::fs::write(outside.join("sub").join("notes"), "notes\n").unwrap();
        Self {
            tmp,
            dir,
            outside,
            canary,
            layout,
        }
    }

    pub(crate) fn store(&self) -> DirStore {
        DirStore::new(&self.dir).with_layout(self.layout)
    }

    /// Where the Secret folders are: `DIR/NS` (kubelet), DIR (standalone).
    pub(crate) fn secrets_root(&self) -> PathBuf {
        secrets_root(&self.dir, self.layout)
    }

    /// The folder of Secret `name` of the profile's namespace.
    pub(crate) fn folder(&self, name: &str) -> PathBuf {
        self.secrets_root().join(name)
    }

    /// How many folders below DIR a Secret folder is.
    pub(crate) fn depth(&self) -> usize {
        if self.layout == DirLayout::Standalone {
            1
        } else {
            2
        }
    }

    pub(crate) fn canary_path(&self) -> PathBuf {
        self.outside.join("canary")
    }

    /// Every entry beside DIR (the temporary folder itself and the outside folder): kind,
    /// mode, owner, size, mtime, ctime, and content or link target.
    pub(crate) fn outside_tree(&self) -> BTreeMap<PathBuf, String> {
        let mut tree = BTreeMap::new();
        snapshot(self.tmp.path(), self.tmp.path(), Some(&self.dir), &mut tree);
        tree
    }

    pub(crate) fn assert_no_canary(&self, text: &str) {
        assert!(!text.contains(&self.canary), "canary read: {text}");
    }

    /// No regular file under DIR holds the canary's content.
    pub(crate) fn assert_canary_nowhere_in_dir(&self) {
        let mut tree = BTreeMap::new();
        if self.dir.exists() {
            snapshot(&self.dir, &self.dir, None, &mut tree);
        }
        for (path, entry) in tree {
            assert!(
                !entry.contains(&self.canary),
                "canary copied into {}",
                path.display()
            );
        }
    }

    /// Plants `what` at `DIR/folder/name`, creating real folders on the way; skipped where
    /// a link or file already stands on the way (planting must not write outside either).
    pub(crate) fn plant(&self, folder: &str, name: &str, what: &Plant) {
        // The same places in the standalone tree, which has no namespace level (the
        // namespace folder itself stays: a stranger's folder in DIR).
        let folder = if self.layout == DirLayout::Standalone {
            folder
                .strip_prefix("envoy-gateway-system/")
                .unwrap_or(folder)
        } else {
            folder
        };
        let mut at = self.dir.clone();
        for part in Path::new(folder).components() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return,
                Err(_) => std::fs::create_dir(&at).unwrap(),
            }
        }
        let path = at.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path).unwrap(),
            Ok(_) => std::fs::remove_file(&path).unwrap(),
            Err(_) => {}
        }
        let depth = path.strip_prefix(&self.dir).unwrap().components().count();
        match what {
            Plant::File(bytes) => std::fs::write(&path, bytes).unwrap(),
            Plant::Folder => std::fs::create_dir(&path).unwrap(),
            Plant::Fifo => rustix::fs::mkfifoat(
                rustix::fs::CWD,
                &path,
                rustix::fs::Mode::from_raw_mode(0o600),
            )
            .unwrap(),
            Plant::LinkToCanary => symlink(self.canary_path(), &path).unwrap(),
            Plant::RelativeLinkToCanary => {
                let up = "../".repeat(depth);
                symlink(format!("{up}outside/canary"), &path).unwrap();
            }
            Plant::LinkToOutside => symlink(&self.outside, &path).unwrap(),
            Plant::Dangling => symlink(self.outside.join("nothing-here"), &path).unwrap(),
            Plant::LinkInside(sibling) => symlink(sibling, &path).unwrap(),
            Plant::DotDot => {
                let up = "../".repeat(depth);
                symlink(format!("..v1/../{up}outside"), &path).unwrap();
            }
        }
    }
}

pub(crate) fn snapshot(
    base: &Path,
    path: &Path,
    skip: Option<&Path>,
    tree: &mut BTreeMap<PathBuf, String>,
) {
    if skip == Some(path) {
        return;
    }
    let meta = std::fs::symlink_metadata(path).unwrap();
    let t = meta.file_type();
    let what = if t.is_symlink() {
        format!("link {:?}", std::fs::read_link(path).unwrap())
    } else if t.is_file() {
        String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned()
    } else {
        String::new()
    };
    tree.insert(
        path.strip_prefix(base).unwrap().to_owned(),
        format!(
            "mode {:o} uid {} size {} mtime {}.{} ctime {}.{} {what}",
            meta.mode(),
            meta.uid(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        ),
    );
    if t.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            snapshot(base, &entry.unwrap().path(), skip, tree);
        }
    }
}

/// Copies a tree (folders, regular files, links as links), keeping modes.
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    let meta = std::fs::symlink_metadata(from).unwrap();
    if meta.file_type().is_symlink() {
        // (Not chmod: that would follow the link.)
        symlink(std::fs::read_link(from).unwrap(), to).unwrap();
        return;
    }
    if meta.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
    std::fs::set_permissions(to, meta.permissions()).ok();
}

pub(crate) fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), None).unwrap();
    if std::fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Reads Secret `name` on a thread, failing if it does not answer within `limit` (a FIFO
/// waited on never answers). The error's text.
pub(crate) fn read_within(store: &DirStore, name: &str, limit: Duration) -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let store = store.clone();
    let name = name.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let result = runtime.block_on(store.read_secret(&secret(&name)));
        let _ = tx.send(result.map(|s| s.is_some()).map_err(|e| e.to_chain()));
    });
    match rx.recv_timeout(limit) {
        Ok(Err(e)) => Ok(e),
        Ok(Ok(found)) => Err(format!("read succeeded (found: {found})")),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

/// What a killed run leaves in a Secret folder: a filled version never swapped in (with a
/// CA key), the previous version never removed, a temporary link.
pub(crate) fn plant_orphans(secret: &Path) {
    let current = std::fs::read_link(secret.join("..data")).unwrap();
    copy_tree(&secret.join(&current), &secret.join("..v0"));
    std::fs::create_dir(secret.join("..v99")).unwrap();
    std::fs::write(secret.join("..v99").join("next-ca.key"), "ORPHANED KEY").unwrap();
    symlink("..v99", secret.join("..data_tmp")).unwrap();
}

/// The Secret folder holds exactly one version folder, the one `..data` points to, and
/// no temporary link.
pub(crate) fn assert_only_current_versions(secret: &Path) {
    let current = std::fs::read_link(secret.join("..data")).unwrap();
    for entry in std::fs::read_dir(secret).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with("..v") {
            assert_eq!(Path::new(&name), current, "orphan in {}", secret.display());
        }
        assert!(
            !name.ends_with("_tmp"),
            "{name} left in {}",
            secret.display()
        );
    }
}

/// Under DIR, every Secret folder holds only its current version, and no key file lies
/// anywhere but in a current version folder.
pub(crate) fn assert_no_stale_keys(site: &Site) {
    let dir = &site.dir;
    for secret in std::fs::read_dir(site.secrets_root()).unwrap() {
        let secret = secret.unwrap().path();
        // (DIR also holds `..lock`, in the standalone layout beside the Secret folders.)
        if secret.is_dir() {
            assert_only_current_versions(&secret);
        }
    }
    let mut tree = BTreeMap::new();
    snapshot(dir, dir, None, &mut tree);
    for path in tree.keys() {
        let meta = std::fs::symlink_metadata(dir.join(path)).unwrap();
        if meta.is_file() && path.extension().is_some_and(|e| e == "key") {
            let version = path.parent().unwrap();
            let secret = dir.join(version.parent().unwrap());
            let current = std::fs::read_link(secret.join("..data")).unwrap();
            assert_eq!(
                version.file_name().unwrap(),
                current.as_os_str(),
                "key file {} outside the current version",
                path.display()
            );
        }
    }
}

/// An error and its causes, as `anyhow` prints them with `{:#}` (each cause once).
pub(crate) trait ToChain {
    fn to_chain(&self) -> String;
}

impl<E: std::error::Error> ToChain for E {
    fn to_chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = self.source();
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }
}

/// A tmpfs this test may remount read-only (root only: skipped, saying so, otherwise).
pub(crate) struct ReadOnlyCapable(pub(crate) PathBuf);

impl ReadOnlyCapable {
    pub(crate) fn mount() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap().keep();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
            .arg(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("CERTROTATE_REQUIRE_MOUNT").is_none(),
                "cannot mount a tmpfs (root needed) and CERTROTATE_REQUIRE_MOUNT is set"
            );
            println!("skipped: mounting a tmpfs needs root");
            return None;
        }
        Some(Self(dir))
    }

    pub(crate) fn remount(&self, mode: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {mode}");
    }
}

impl Drop for ReadOnlyCapable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}
