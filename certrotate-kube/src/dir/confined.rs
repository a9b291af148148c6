//! Folders beneath DIR, opened through handles that cannot escape it.
//!
//! Every operation takes one file name (never a path with `/` or `..`) relative to an
//! open [`cap_std::fs::Dir`], which resolves beneath that folder by construction (on Linux
//! with `openat2(RESOLVE_BENEATH)`). Nothing here follows a symbolic link: folders are
//! opened with `O_NOFOLLOW`, files with `O_NOFOLLOW | O_NONBLOCK`, and what was opened is
//! checked with `fstat` (a folder, a regular file) before it is used. Ambient authority is
//! used once, to open DIR itself.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt, OpenOptionsMaybeDirExt};
use cap_std::fs::{
    Dir, DirBuilder, DirBuilderExt, FileType, FileTypeExt, Metadata, MetadataExt, OpenOptions,
    OpenOptionsExt,
};
use rustix::fs::OFlags;
use rustix::io::Errno;

use super::{DirError, TrustChecks, Untrusted};

/// The lock file in DIR that serialises writers across processes.
pub(super) const LOCK: &str = "..lock";

/// An open folder beneath DIR (or DIR itself), with its path for messages.
#[derive(Debug)]
pub(super) struct Folder {
    dir: Dir,
    path: PathBuf,
    trust: TrustChecks,
}

/// What a name in a folder is, without following it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Folder,
    File,
    Symlink,
    /// A FIFO, socket or device: never opened.
    Other(&'static str),
}

impl Folder {
    /// Opens DIR (creating it, 0700, when `create`); `None` if it does not exist and
    /// `create` is false. DIR must pass the ownership checks.
    pub(super) fn open_root(
        root: &Path,
        trust: TrustChecks,
        create: bool,
    ) -> Result<Option<Self>, DirError> {
        // DIR may be a link (the user's choice), but not one another user planted (in a
        // sticky /tmp, say): like the kernel's `protected_symlinks`, only a link of this
        // user's or root's is followed. Each name is opened once without following it and
        // everything is decided on that handle, so a link swapped in after a check is
        // never followed (a check of the path, then an open of it, was a race). Missing
        // folders are made in the same walk, each beneath its checked parent.
        let dir = match open_root_dir(root, trust, create) {
            Ok(dir) => dir,
            Err(RootError::Io(e)) if e.kind() == io::ErrorKind::NotFound && !create => {
                return Ok(None);
            }
            Err(RootError::Io(e)) => return Err(DirError::io(root, e)),
            Err(RootError::Untrusted(e)) => return Err(e),
        };
        let folder = Self {
            dir,
            path: root.to_owned(),
            trust,
        };
        let meta = folder
            .dir
            .dir_metadata()
            .map_err(|e| DirError::io(root, e))?;
        folder.check_trust(&meta, &folder.path)?;
        Ok(Some(folder))
    }

    /// The path of a name in this folder, for messages.
    pub(super) fn child(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// What `name` is, without following it; `None` if absent.
    pub(super) fn kind(&self, name: &str) -> Result<Option<Kind>, DirError> {
        match self.dir.symlink_metadata(name) {
            Ok(meta) => Ok(Some(kind_of(meta.file_type()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(DirError::io(&self.child(name), e)),
        }
    }

    /// Opens the sub-folder `name` (creating it, 0700, when `create`); `None` if absent and
    /// `create` is false. A symbolic link or anything but a folder is refused, and the
    /// folder must pass the ownership checks.
    pub(super) fn open_folder(&self, name: &str, create: bool) -> Result<Option<Self>, DirError> {
        let path = self.child(name);
        if create {
            let mut builder = DirBuilder::new();
            builder.mode(0o700);
            match self.dir.create_dir_with(name, &builder) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(DirError::io(&path, e)),
            }
        }
        match self.kind(name)? {
            None => return Ok(None),
            Some(Kind::Folder) => {}
            Some(Kind::Symlink) => return Err(DirError::Symlink { path }),
            Some(other) => {
                return Err(DirError::NotAFolder {
                    path,
                    found: other.describe(),
                });
            }
        }
        // O_NOFOLLOW: a folder swapped for a link since the check above fails here.
        let dir = match self.dir.open_dir_nofollow(name) {
            Ok(dir) => dir,
            // Removed since it was looked at (readers do not take the lock).
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(open_error(&path, e)),
        };
        let meta = dir.dir_metadata().map_err(|e| DirError::io(&path, e))?;
        if !meta.is_dir() {
            return Err(DirError::NotAFolder {
                path,
                found: kind_of(meta.file_type()).describe(),
            });
        }
        let folder = Self {
            dir,
            path,
            trust: self.trust,
        };
        folder.check_trust(&meta, &folder.path)?;
        Ok(Some(folder))
    }

    /// Reads the regular file `name`, at most `limit` bytes; `None` if absent. A symbolic
    /// link, FIFO, socket or device is refused without being read, as is a file another
    /// user owns or others may write; the read stops at `limit + 1` bytes whatever the
    /// file's metadata says.
    pub(super) fn read_file(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, DirError> {
        let path = self.child(name);
        match self.kind(name)? {
            None => return Ok(None),
            Some(Kind::File) => {}
            Some(Kind::Symlink) => return Err(DirError::Symlink { path }),
            Some(other) => {
                return Err(DirError::NotAFile {
                    path,
                    found: other.describe(),
                });
            }
        }
        let mut options = OpenOptions::new();
        options.read(true);
        // Removed since it was looked at (readers do not take the lock): absent.
        let Some(file) = self.open_regular(name, &mut options)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| DirError::io(&path, e))?;
        if bytes.len() as u64 > limit {
            return Err(DirError::TooLarge { path, limit });
        }
        Ok(Some(bytes))
    }

    /// Creates the new file `name` (0600, never through a link) and writes it. Not durable
    /// until the caller syncs ([`Self::sync_filesystem`]).
    pub(super) fn create_file(&self, name: &str, contents: &[u8]) -> Result<(), DirError> {
        let path = self.child(name);
        let mut options = OpenOptions::new();
        options
            .write(true)
            .create_new(true)
            .mode(0o600)
            .follow(FollowSymlinks::No);
        let mut file = self
            .dir
            .open_with(name, &options)
            .map_err(|e| open_error(&path, e))?;
        file.write_all(contents).map_err(|e| DirError::io(&path, e))
    }

    /// Takes the exclusive lock `DIR/..lock` (created 0600; a link or anything but a
    /// regular file there is refused). The lock is held until the file is dropped.
    pub(super) fn lock(&self) -> Result<std::fs::File, DirError> {
        let path = self.child(LOCK);
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(false).mode(0o600);
        // Created if absent, so it is there (a `None` is a lock file removed meanwhile).
        let file = self
            .open_regular(LOCK, &mut options)?
            .ok_or_else(|| DirError::Layout {
                path: path.clone(),
                problem: super::LayoutProblem::Vanished,
            })?
            .into_std();
        wait_for_lock(&file, &path, LOCK_WAIT, |f| f.try_lock())?;
        Ok(file)
    }

    /// Takes `DIR/..lock` shared (writers take it exclusive), for a reader that kept
    /// racing writers; `None` if there is no lock file (nobody wrote under the lock yet).
    pub(super) fn lock_shared(&self) -> Result<Option<std::fs::File>, DirError> {
        let path = self.child(LOCK);
        let mut options = OpenOptions::new();
        options.read(true);
        let Some(file) = self.open_regular(LOCK, &mut options)? else {
            return Ok(None);
        };
        let file = file.into_std();
        wait_for_lock(&file, &path, LOCK_WAIT, |f| f.try_lock_shared())?;
        Ok(Some(file))
    }

    /// Opens `name` with `options`, never through a link and without waiting on a FIFO,
    /// and checks what was opened (not what the name pointed to a moment ago): a regular
    /// file that passes the ownership checks. `None` if it does not exist.
    fn open_regular(
        &self,
        name: &str,
        options: &mut OpenOptions,
    ) -> Result<Option<cap_std::fs::File>, DirError> {
        let path = self.child(name);
        options.follow(FollowSymlinks::No).custom_flags(nonblock());
        let file = match self.dir.open_with(name, options) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            // Opening a FIFO without a reader, or a socket, for writing fails with ENXIO
            // ("No such device or address"): say what is there instead.
            Err(e) if Errno::from_io_error(&e) == Some(Errno::NXIO) => {
                return Err(match self.dir.symlink_metadata(name) {
                    Ok(meta) => DirError::NotAFile {
                        path,
                        found: kind_of(meta.file_type()).describe(),
                    },
                    Err(_) => open_error(&path, e),
                });
            }
            Err(e) => return Err(open_error(&path, e)),
        };
        let meta = file.metadata().map_err(|e| DirError::io(&path, e))?;
        if !meta.is_file() {
            return Err(DirError::NotAFile {
                path,
                found: kind_of(meta.file_type()).describe(),
            });
        }
        self.check_trust(&meta, &path)?;
        Ok(Some(file))
    }

    /// The target of the symbolic link `name`, as stored (never resolved).
    pub(super) fn read_link(&self, name: &str) -> Result<PathBuf, DirError> {
        self.dir
            .read_link_contents(name)
            .map_err(|e| DirError::io(&self.child(name), e))
    }

    /// The target of the symbolic link `name`; `None` if it no longer exists (a writer
    /// removed it since it was listed).
    pub(super) fn read_link_opt(&self, name: &str) -> Result<Option<PathBuf>, DirError> {
        match self.dir.read_link_contents(name) {
            Ok(target) => Ok(Some(target)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(DirError::io(&self.child(name), e)),
        }
    }

    /// Creates the symbolic link `name` -> `target` (a relative target, checked by the
    /// caller, and resolved only by consumers of the layout).
    pub(super) fn symlink(&self, target: &str, name: &str) -> Result<(), DirError> {
        self.dir
            .symlink(target, name)
            .map_err(|e| DirError::io(&self.child(name), e))
    }

    /// Renames `from` to `to` within this folder (replacing `to`; a link is replaced, not
    /// followed).
    pub(super) fn rename(&self, from: &str, to: &str) -> Result<(), DirError> {
        self.dir
            .rename(from, &self.dir, to)
            .map_err(|e| DirError::io(&self.child(to), e))
    }

    /// Removes `name` if present: a folder with everything in it (links inside are removed,
    /// never followed), anything else unlinked. Whether anything was removed.
    pub(super) fn remove(&self, name: &str) -> Result<bool, DirError> {
        let path = self.child(name);
        let removed = match self.kind(name)? {
            None => return Ok(false),
            Some(Kind::Folder) => self.dir.remove_dir_all(name),
            Some(_) => self.dir.remove_file(name),
        };
        match removed {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(DirError::io(&path, e)),
        }
    }

    /// The names in this folder (unsorted).
    /// The names in this folder; `None` if the folder was removed since it was opened (a
    /// removed folder cannot be listed).
    pub(super) fn names_if_present(&self) -> Result<Option<Vec<OsString>>, DirError> {
        match self.names() {
            Ok(names) => Ok(Some(names)),
            Err(DirError::Io { error, .. }) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) fn names(&self) -> Result<Vec<OsString>, DirError> {
        let mut names = Vec::new();
        for entry in self
            .dir
            .entries()
            .map_err(|e| DirError::io(&self.path, e))?
        {
            names.push(entry.map_err(|e| DirError::io(&self.path, e))?.file_name());
        }
        Ok(names)
    }

    /// fsyncs the folder, making renames, new and removed names in it durable.
    pub(super) fn sync(&self) -> Result<(), DirError> {
        // The handle may be `O_PATH` (which fsync refuses): open the folder itself to read.
        let mut options = OpenOptions::new();
        options
            .read(true)
            .maybe_dir(true)
            .follow(FollowSymlinks::No);
        self.dir
            .open_with(".", &options)
            .and_then(|f| f.sync_all())
            .map_err(|e| DirError::io(&self.path, e))
    }

    /// The filesystem this folder is on (its `st_dev`).
    pub(super) fn device(&self) -> Result<u64, DirError> {
        self.dir
            .dir_metadata()
            .map(|meta| meta.dev())
            .map_err(|e| DirError::io(&self.path, e))
    }

    /// Makes everything written on this folder's filesystem durable at once (`syncfs`):
    /// files, folders, renames and removals, with one flush where an fsync per file and
    /// folder would each wait for the disk. Elsewhere than Linux, `sync`.
    pub(super) fn sync_filesystem(&self) -> Result<(), DirError> {
        // The handle may be `O_PATH` (which syncfs refuses): open the folder itself.
        let mut options = OpenOptions::new();
        options
            .read(true)
            .maybe_dir(true)
            .follow(FollowSymlinks::No);
        let folder = self
            .dir
            .open_with(".", &options)
            .map_err(|e| DirError::io(&self.path, e))?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        rustix::fs::syncfs(&folder).map_err(|e| DirError::io(&self.path, e.into()))?;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            drop(folder);
            rustix::fs::sync();
        }
        Ok(())
    }

    /// OpenSSH's StrictModes: owned by this user or root, writable by nobody else.
    fn check_trust(&self, meta: &Metadata, path: &Path) -> Result<(), DirError> {
        if self.trust == TrustChecks::SkipUnsafe {
            return Ok(());
        }
        check_owner(meta.uid(), path)?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(DirError::Untrusted {
                path: path.to_owned(),
                why: Untrusted::Writable { mode },
            });
        }
        Ok(())
    }
}

impl Kind {
    /// A noun for messages.
    pub(super) fn describe(self) -> &'static str {
        match self {
            Self::Folder => "a folder",
            Self::File => "a regular file",
            Self::Symlink => "a symbolic link",
            Self::Other(what) => what,
        }
    }
}

/// Owned by this user or root.
fn check_owner(uid: u32, path: &Path) -> Result<(), DirError> {
    let euid = rustix::process::geteuid().as_raw();
    if uid != euid && uid != 0 {
        return Err(DirError::Untrusted {
            path: path.to_owned(),
            why: Untrusted::Owner { uid, euid },
        });
    }
    Ok(())
}

fn kind_of(t: FileType) -> Kind {
    if t.is_symlink() {
        Kind::Symlink
    } else if t.is_dir() {
        Kind::Folder
    } else if t.is_file() {
        Kind::File
    } else if t.is_fifo() {
        Kind::Other("a FIFO")
    } else if t.is_socket() {
        Kind::Other("a socket")
    } else if t.is_char_device() || t.is_block_device() {
        Kind::Other("a device")
    } else {
        Kind::Other("neither a file nor a folder")
    }
}

/// `O_NONBLOCK`: opening a FIFO returns at once (and is then refused) instead of waiting for
/// a writer.
fn nonblock() -> i32 {
    // The flag's bits fit an `i32` on every target rustix supports (0o4000 on Linux).
    OFlags::NONBLOCK.bits() as i32
}

/// An error opening `path` with `O_NOFOLLOW`: `ELOOP` means a link was there.
fn open_error(path: &Path, e: io::Error) -> DirError {
    if Errno::from_io_error(&e) == Some(Errno::LOOP) {
        DirError::Symlink {
            path: path.to_owned(),
        }
    } else {
        DirError::io(path, e)
    }
}

/// Why DIR could not be opened.
enum RootError {
    Io(io::Error),
    Untrusted(DirError),
}

impl From<rustix::io::Errno> for RootError {
    fn from(e: rustix::io::Errno) -> Self {
        Self::Io(e.into())
    }
}

/// Opens DIR (the one use of ambient authority) without a check-then-use race, and
/// following no link another user owns, anywhere on the way.
///
/// The path is walked one component at a time, each opened `O_PATH | O_NOFOLLOW` beneath
/// the handle of the folder before it, and judged on the handle: a link is followed only
/// if this user or root owns it (as the kernel's `protected_symlinks` judges links in
/// sticky folders), by walking its target the same way from that folder (or from `/`), at
/// most [`MAX_LINKS`] links in all. So `DIR/` and `DIR/.` name DIR itself (with which the
/// kernel would follow a link at `DIR` even under `O_NOFOLLOW`), a link swapped in after a
/// check is never followed, and a link another user planted in a sticky folder on the way
/// to a link's target is refused as well. A path ending in `..` is refused: it names a
/// folder reached through the one before it.
///
/// With `create`, a missing folder on the way is made (0700) beneath the handle of its
/// parent, already judged, and then opened like any other name: nothing is created through
/// a link (a path-based `create_dir_all` followed one that another user swapped in).
fn open_root_dir(root: &Path, trust: TrustChecks, create: bool) -> Result<Dir, RootError> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    use std::path::Component;

    use rustix::fs::{FileType, Mode};
    let folder_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let named_flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if matches!(root.components().next_back(), Some(Component::ParentDir)) {
        return Err(RootError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "ends in `..`: name the folder itself",
        )));
    }
    // The names still to walk, and where they start: `/`, or the working folder.
    let names = |path: &Path| -> Vec<OsString> {
        path.components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name.to_owned()),
                Component::ParentDir => Some("..".into()),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
            })
            .collect()
    };
    let start = |path: &Path| -> Result<(rustix::fd::OwnedFd, PathBuf), RootError> {
        Ok(if path.has_root() {
            (
                rustix::fs::open("/", folder_flags, Mode::empty())?,
                PathBuf::from("/"),
            )
        } else {
            (
                rustix::fs::open(".", folder_flags, Mode::empty())?,
                PathBuf::new(),
            )
        })
    };
    let mut pending: VecDeque<OsString> = names(root).into();
    let (mut current, mut shown) = start(root)?;
    let mut links = 0;
    let mut from_root_path = true;
    while let Some(name) = pending.pop_front() {
        let next = match rustix::fs::openat(&current, &name, named_flags, Mode::empty()) {
            Err(Errno::NOENT) if create && name != ".." => {
                match rustix::fs::mkdirat(&current, &name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                rustix::fs::openat(&current, &name, named_flags, Mode::empty())?
            }
            opened => opened?,
        };
        let stat = rustix::fs::fstat(&next)?;
        let here = shown.join(&name);
        race_point(&here, from_root_path && pending.is_empty());
        if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink {
            if trust == TrustChecks::Enforce {
                check_owner(stat.st_uid, &here).map_err(RootError::Untrusted)?;
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(RootError::Io(Errno::LOOP.into()));
            }
            let target = rustix::fs::readlinkat(&next, "", Vec::new())?;
            let target = Path::new(std::ffi::OsStr::from_bytes(target.as_bytes()));
            // The target's names come first; a relative one starts from the link's folder.
            for name in names(target).into_iter().rev() {
                pending.push_front(name);
            }
            if target.has_root() {
                (current, shown) = start(target)?;
            }
            from_root_path = false;
            continue;
        }
        current = next;
        shown = here;
    }
    let opened = rustix::fs::openat(
        &current,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(Dir::from_std_file(std::fs::File::from(opened)))
}

/// Where a test swaps DIR between its check and its use: after the last name of the path
/// as given was opened and judged. Nothing outside tests.
#[cfg(not(test))]
fn race_point(_: &Path, _: bool) {}

/// How long a run waits for another one's `DIR/..lock`: a run holds it for a batch of
/// writes (milliseconds), so a minute is a hung or stopped process, said so, not waited on
/// forever.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Takes the lock with `try_lock`, and if another run holds it, says so once and retries
/// for at most `limit`.
fn wait_for_lock(
    file: &std::fs::File,
    path: &std::path::Path,
    limit: std::time::Duration,
    try_lock: impl Fn(&std::fs::File) -> Result<(), std::fs::TryLockError>,
) -> Result<(), DirError> {
    // Counted in pauses, not read from the clock (which only `SystemClock` reads).
    const PAUSE: std::time::Duration = std::time::Duration::from_millis(50);
    let mut waited = std::time::Duration::ZERO;
    let mut said = false;
    loop {
        match try_lock(file) {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::Error(e)) => return Err(DirError::io(path, e)),
            Err(std::fs::TryLockError::WouldBlock) => {}
        }
        if waited >= limit {
            return Err(DirError::LockBusy {
                path: path.to_owned(),
                waited,
            });
        }
        if !said {
            tracing::info!(lock = %path.display(), "another certrotate run holds the lock; waiting");
            said = true;
        }
        waited += PAUSE;
        std::thread::sleep(PAUSE);
    }
}

#[cfg(test)]
fn race_point(path: &Path, last: bool) {
    if last {
        tests::race(path);
    }
}

/// The most links followed to reach DIR (the kernel's own limit is 40).
const MAX_LINKS: usize = 8;

#[cfg(test)]
mod tests {
    //! Red-team finding 01: DIR was checked with `symlink_metadata`, then opened by path, so
    //! a link swapped in between was followed. These tests swap DIR at that very moment
    //! (after the check) and assert that the store works in what was checked.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::cell::Cell;
    use std::os::unix::fs::symlink;

    use super::*;

    thread_local! {
        /// What to do to DIR between its check and its use, on this thread.
        static RACE: Cell<Option<fn(&Path)>> = const { Cell::new(None) };
    }

    /// Called by [`open_root_dir`] right after the handle it judges DIR's last name by was
    /// opened.
    pub(super) fn race(root: &Path) {
        if let Some(swap) = RACE.take() {
            swap(root);
        }
    }

    /// Replaces DIR (whatever it is) by a link to the sibling `evil`, as another user
    /// would in a sticky /tmp.
    fn swap_to_evil(root: &Path) {
        let parent = root.parent().unwrap();
        let held = parent.join("held");
        std::fs::rename(root, &held).unwrap();
        symlink(parent.join("evil"), root).unwrap();
    }

    fn write_through(root: &Path) {
        RACE.set(Some(swap_to_evil));
        let dir = open_root_dir(root, TrustChecks::Enforce, false)
            .map_err(|_| "open")
            .unwrap();
        assert!(RACE.take().is_none(), "the swap ran");
        dir.create_dir("written").unwrap();
    }

    #[test]
    fn a_folder_swapped_for_a_link_after_the_check_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("evil")).unwrap();
        let root = tmp.path().join("dir");
        std::fs::create_dir(&root).unwrap();
        write_through(&root);
        assert!(
            tmp.path().join("held/written").is_dir(),
            "written in the folder checked"
        );
        assert!(
            !tmp.path().join("evil/written").exists(),
            "the swapped link was followed"
        );
    }

    #[test]
    fn a_link_swapped_for_another_after_the_check_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("evil")).unwrap();
        std::fs::create_dir(tmp.path().join("good")).unwrap();
        let root = tmp.path().join("dir");
        symlink(tmp.path().join("good"), &root).unwrap();
        write_through(&root);
        assert!(
            tmp.path().join("good/written").is_dir(),
            "written where the link checked pointed"
        );
        assert!(
            !tmp.path().join("evil/written").exists(),
            "the swapped link was followed"
        );
    }

    /// Info item of hardening round 3: a `..lock` held by a hung run is waited on for a
    /// bounded time, then named, never forever.
    #[test]
    fn a_held_lock_is_waited_on_for_a_bounded_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK);
        let holder = std::fs::File::create(&path).unwrap();
        holder.lock().unwrap();
        let other = std::fs::File::open(&path).unwrap();
        let limit = std::time::Duration::from_millis(200);
        let e = wait_for_lock(&other, &path, limit, |f| f.try_lock_shared()).unwrap_err();
        assert!(matches!(e, DirError::LockBusy { .. }), "{e}");
        assert!(e.to_string().contains("..lock"), "{e}");
        drop(holder);
        wait_for_lock(&other, &path, limit, |f| f.try_lock_shared()).unwrap();
    }
}
