//! The files the CLI reads besides DIR: `inspect` and `bundle` inputs (a file, a pipe,
//! stdin, or the certificate files of a folder) and `--profile`. Each is opened without
//! blocking and judged on the handle opened before anything waits on it or reads it, and
//! no read goes past [`MAX_INPUT_BYTES`] (+ 1 byte), whatever the metadata says.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::MAX_INPUT_BYTES;

/// The most files `inspect FOLDER` reads.
const MAX_WALKED_FILES: usize = 10_000;

/// What `inspect PATH` reads.
pub(crate) enum Inputs {
    /// Stdin (`-`, `/dev/stdin`), a file or a pipe.
    One(PathBuf),
    /// The `*.crt` / `*.pem` files found below a folder, relative to it, each with whether
    /// it is a link.
    Walked {
        /// The folder: every file is opened through it, so nothing resolves outside it.
        root: cap_std::fs::Dir,
        /// The files, in order.
        files: Vec<(PathBuf, bool)>,
    },
}

/// The inputs of `inspect PATH`. A folder is walked three levels deep, skipping the `..`
/// folders of the directory store and never entering a folder through a link (so a link
/// cannot make the walk leave the folder or go round in circles); at most
/// [`MAX_WALKED_FILES`] files. The files found may be links (a local-mode DIR's keys are
/// `KEY -> ..data/KEY`): they are opened beneath the folder, so one leading out of it is
/// not read.
pub(crate) fn certificate_inputs(path: &Path) -> Result<Inputs> {
    let is_folder = !is_stdin(path)
        && std::fs::metadata(path)
            .with_context(|| format!("{}", path.display()))?
            .is_dir();
    if !is_folder {
        // A file, a pipe (`<(...)`), or something `read_input` refuses, naming it.
        return Ok(Inputs::One(path.to_owned()));
    }
    let root = cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority())
        .with_context(|| format!("{}", path.display()))?;
    let mut files = Vec::new();
    let mut stack = vec![(PathBuf::new(), 0)];
    while let Some((folder, depth)) = stack.pop() {
        let listing = if folder.as_os_str().is_empty() {
            root.entries()
        } else {
            root.read_dir(&folder)
        };
        let mut entries: Vec<_> = listing
            .with_context(|| format!("{}", path.join(&folder).display()))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            // The entry's own type: a link to a folder is not a folder here.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let relative = folder.join(entry.file_name());
            if kind.is_dir() && depth < 3 {
                stack.push((relative, depth + 1));
            } else if (kind.is_file() || kind.is_symlink())
                && (name.ends_with(".crt") || name.ends_with(".pem"))
            {
                if files.len() == MAX_WALKED_FILES {
                    bail!(
                        "{}: more than {MAX_WALKED_FILES} certificate files; inspect a \
                         smaller folder",
                        path.display()
                    );
                }
                files.push((relative, kind.is_symlink()));
            }
        }
    }
    files.sort();
    Ok(Inputs::Walked { root, files })
}

/// Opens `path` for reading without blocking: on a regular file O_NONBLOCK changes
/// nothing; on a FIFO the open returns at once instead of waiting for a writer, so what
/// was opened can be judged first.
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    options.open(path)
}

/// Reads a file found by walking a folder, through the folder's handle (nothing resolves
/// outside it): opened without blocking (a FIFO swapped in after the walk saw a file would
/// otherwise wait forever for a writer), read only if what was opened is a regular file,
/// and never past `budget` bytes (what is left of the walk's [`MAX_INPUT_BYTES`]).
pub(crate) fn read_walked_file(
    root: &cap_std::fs::Dir,
    relative: &Path,
    shown: &Path,
    budget: u64,
) -> Result<Vec<u8>> {
    let name = shown.display();
    let mut options = cap_std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use cap_std::fs::OpenOptionsExt as _;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let file = root
        .open_with(relative, &options)
        .with_context(|| format!("opening {name}"))?
        .into_std();
    let kind = file
        .metadata()
        .with_context(|| format!("reading {name}"))?
        .file_type();
    if !kind.is_file() {
        bail!(
            "{name}: not a regular file ({}); it changed after the folder was listed",
            describe_file_type(&kind)
        );
    }
    let mut data = Vec::new();
    file.take(budget + 1)
        .read_to_end(&mut data)
        .with_context(|| format!("reading {name}"))?;
    if data.len() as u64 > budget {
        bail!(
            "{name}: the files of the folder hold more than the limit of {MAX_INPUT_BYTES} \
             bytes together"
        );
    }
    Ok(data)
}

/// Whether a path names this process's standard input.
pub(crate) fn is_stdin(path: &Path) -> bool {
    [
        Path::new("-"),
        Path::new("/dev/stdin"),
        Path::new("/dev/fd/0"),
    ]
    .contains(&path)
}

/// How an input is named in messages: its path, or `stdin`.
pub(crate) fn input_name(path: &Path) -> String {
    if is_stdin(path) {
        "stdin".into()
    } else {
        path.display().to_string()
    }
}

/// Reads a file, a pipe, or stdin (`-`, `/dev/stdin`), refusing more than
/// [`MAX_INPUT_BYTES`] and anything else (a folder, a device but `/dev/null`, the empty
/// input): the read stops at the limit plus one byte, whatever the file's metadata says.
pub(crate) fn read_input(path: &Path) -> Result<Vec<u8>> {
    read_input_with(path, |_, _| Ok(()))
}

/// [`read_input`], with `check` run on what was opened (its metadata, from the handle)
/// before anything is read.
pub(crate) fn read_input_with(
    path: &Path,
    check: impl FnOnce(&str, &std::fs::Metadata) -> Result<()>,
) -> Result<Vec<u8>> {
    let name = input_name(path);
    let mut data = Vec::new();
    if path == Path::new("/dev/null") {
        return Ok(data);
    }
    if is_stdin(path) {
        std::io::stdin()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut data)
            .context("reading stdin")?;
    } else {
        // Opened without blocking, so that a FIFO is judged (by `check`) before anything
        // waits on it.
        let file = open_nonblocking(path).with_context(|| format!("opening {name}"))?;
        // The type of what was opened, not of what the path named a moment before.
        let meta = file.metadata().with_context(|| format!("reading {name}"))?;
        let kind = meta.file_type();
        if !kind.is_file() && !is_pipe(&kind) {
            bail!(
                "{name}: not a regular file nor a pipe ({})",
                describe_file_type(&kind)
            );
        }
        check(&name, &meta)?;
        if is_pipe(&kind) {
            // A FIFO, judged: now wait for its writer, as `cat` would, on the very FIFO
            // opened (not by its path, which may name something else by now).
            read_pipe(&file, &mut data).with_context(|| format!("reading {name}"))?;
        } else {
            file.take(MAX_INPUT_BYTES + 1)
                .read_to_end(&mut data)
                .with_context(|| format!("reading {name}"))?;
        }
    }
    if data.len() as u64 > MAX_INPUT_BYTES {
        bail!("{name}: more than the limit of {MAX_INPUT_BYTES} bytes");
    }
    Ok(data)
}

/// Reads a FIFO or pipe opened with `O_NONBLOCK` to its end (at most
/// [`MAX_INPUT_BYTES`] + 1 bytes): `poll` waits for a writer's data or for its last writer
/// to leave (never reported before a writer came), so this waits as a blocking read of a
/// FIFO opened the usual way would.
#[cfg(unix)]
fn read_pipe(mut file: &std::fs::File, data: &mut Vec<u8>) -> std::io::Result<()> {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut buffer = [0u8; 64 * 1024];
    while data.len() as u64 <= MAX_INPUT_BYTES {
        // Before each read: with no writer yet, a read would say end of file at once.
        match poll(&mut [PollFd::new(&file, PollFlags::IN)], None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        match file.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => data.extend_from_slice(&buffer[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn read_pipe(file: &std::fs::File, data: &mut Vec<u8>) -> std::io::Result<()> {
    file.take(MAX_INPUT_BYTES + 1).read_to_end(data).map(|_| ())
}

/// A profile chooses which Secrets are written and what goes into every certificate, so
/// one that any user may change is refused (as DIR is), and one owned by another user
/// (not root) is used with a warning: `sudo certrotate --profile ./mine.yaml` is common.
#[cfg(unix)]
pub(crate) fn check_profile_file(name: &str, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    // A FIFO is judged as a file is: a named one in another user's folder is that user's
    // to write. The caller's own pipes (`<(...)`) are the caller's, mode 0600.
    let mode = meta.mode() & 0o7777;
    if mode & 0o002 != 0 {
        bail!(
            "profile {name}: writable by every user (mode {mode:04o}), so anyone may choose \
             the Secrets written and the names certified; `chmod o-w` it, or pipe it in \
             with `--profile - < FILE`"
        );
    }
    let euid = rustix::process::geteuid().as_raw();
    if meta.uid() != euid && meta.uid() != 0 {
        tracing::warn!(
            "profile {name} belongs to uid {}, not to this user (uid {euid}) nor root: \
             that user chooses the Secrets written and the names certified",
            meta.uid()
        );
    } else if mode & 0o020 != 0 {
        tracing::warn!(
            "profile {name} is writable by its group (mode {mode:04o}): its members choose \
             the Secrets written and the names certified"
        );
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn check_profile_file(_: &str, _: &std::fs::Metadata) -> Result<()> {
    Ok(())
}

#[cfg(unix)]
fn is_pipe(kind: &std::fs::FileType) -> bool {
    std::os::unix::fs::FileTypeExt::is_fifo(kind)
}

#[cfg(not(unix))]
fn is_pipe(_: &std::fs::FileType) -> bool {
    false
}

fn describe_file_type(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a folder"
    } else if is_pipe(kind) {
        "a FIFO"
    } else {
        "not a regular file"
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn read_one(folder: &Path, relative: &str, budget: u64) -> Result<Vec<u8>> {
        let root = cap_std::fs::Dir::open_ambient_dir(folder, cap_std::ambient_authority())?;
        read_walked_file(&root, Path::new(relative), &folder.join(relative), budget)
    }

    /// Red-team finding 02: a `*.crt` swapped for a FIFO after the folder walk hung
    /// `inspect FOLDER` forever in a blocking open. It must be refused at once, named.
    #[test]
    fn a_walked_file_swapped_for_a_fifo_is_refused_without_blocking() {
        let tmp = tempfile::tempdir().expect("tempdir");
        mkfifo(&tmp.path().join("ca.crt"), 0o600);
        let (tx, rx) = std::sync::mpsc::channel();
        let folder = tmp.path().to_owned();
        std::thread::spawn(move || {
            tx.send(read_one(&folder, "ca.crt", MAX_INPUT_BYTES).map_err(|e| format!("{e:#}")))
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("reading a FIFO found by the walk blocked");
        let error = result.expect_err("a FIFO must be refused");
        assert!(
            error.contains("ca.crt") && error.contains("a FIFO"),
            "{error}"
        );
    }

    /// Red-team: root read a world-writable profile owned by another user without a word.
    #[test]
    fn a_world_writable_profile_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("p.yaml");
        std::fs::write(&file, b"namespace: ns\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let error = read_input_with(&file, check_profile_file).expect_err("refused");
        let error = format!("{error:#}");
        assert!(
            error.contains("p.yaml") && error.contains("writable by every user"),
            "{error}"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(read_input_with(&file, check_profile_file).is_ok());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).expect("chmod");
        assert!(
            read_input_with(&file, check_profile_file).is_ok(),
            "a warning only"
        );
    }

    fn mkfifo(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(mode),
            0,
        )
        .expect("mkfifo");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// Red-team N5: a world-writable FIFO as `--profile` skipped the checks (and blocked
    /// until someone wrote to it). It is judged as a file is, before any wait.
    #[test]
    fn a_world_writable_fifo_profile_is_refused_without_blocking() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let fifo = tmp.path().join("p.yaml");
        mkfifo(&fifo, 0o666);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            tx.send(read_input_with(&fifo, check_profile_file).map_err(|e| format!("{e:#}")))
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the FIFO was waited on before it was judged");
        let error = result.expect_err("refused");
        assert!(error.contains("writable by every user"), "{error}");
    }

    /// A FIFO of this user's still works, whether its writer comes before or after the
    /// read starts, and a writer that leaves ends the input.
    #[test]
    fn a_fifo_is_read_whenever_its_writer_comes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for delay in [0, 300] {
            let fifo = tmp.path().join(format!("in-{delay}"));
            mkfifo(&fifo, 0o600);
            let writer = {
                let fifo = fifo.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_millis(delay));
                    std::fs::write(fifo, b"one\n").expect("write");
                })
            };
            assert_eq!(read_input(&fifo).expect("read"), b"one\n", "delay {delay}");
            writer.join().expect("writer");
        }
    }

    /// Red-team N6: the folder walk followed links (out of the folder, and round in
    /// circles). Folders are entered only as themselves; file links are read only if
    /// they resolve beneath the folder (a local-mode DIR's `KEY -> ..data/KEY`).
    #[test]
    fn the_folder_walk_stays_in_the_folder() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        std::fs::write(outside.join("secret.crt"), b"x").expect("write");
        std::fs::write(outside.join("deep.crt"), b"x").expect("write");
        let folder = tmp.path().join("folder");
        std::fs::create_dir_all(folder.join("sub/..data")).expect("mkdir");
        std::fs::write(folder.join("a.crt"), b"a").expect("write");
        std::fs::write(folder.join("sub/..data/tls.crt"), b"t").expect("write");
        std::os::unix::fs::symlink("..data/tls.crt", folder.join("sub/tls.crt")).expect("symlink");
        std::os::unix::fs::symlink(outside.join("secret.crt"), folder.join("link.crt"))
            .expect("symlink");
        std::os::unix::fs::symlink("../outside/secret.crt", folder.join("up.crt"))
            .expect("symlink");
        std::os::unix::fs::symlink(&outside, folder.join("out")).expect("symlink");
        for i in 0..20 {
            std::os::unix::fs::symlink(".", folder.join(format!("loop{i}"))).expect("symlink");
        }
        let Inputs::Walked { root, files } = certificate_inputs(&folder).expect("walk") else {
            panic!("a folder is walked");
        };
        let names: Vec<(&str, bool)> = files
            .iter()
            .map(|(p, link)| (p.to_str().expect("utf-8"), *link))
            .collect();
        assert_eq!(
            names,
            [
                ("a.crt", false),
                ("link.crt", true),
                ("sub/tls.crt", true),
                ("up.crt", true)
            ]
        );
        let read =
            |relative: &str| read_walked_file(&root, Path::new(relative), Path::new(relative), 100);
        assert_eq!(read("a.crt").expect("a.crt"), b"a");
        assert_eq!(read("sub/tls.crt").expect("the layout's link"), b"t");
        assert!(
            read("link.crt").is_err(),
            "an absolute link out of the folder"
        );
        assert!(read("up.crt").is_err(), "a relative link out of the folder");
    }

    #[test]
    fn a_walked_regular_file_is_read() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("ca.crt");
        std::fs::write(&file, b"data").expect("write");
        assert_eq!(read_one(tmp.path(), "ca.crt", 4).expect("read"), b"data");
        let error = read_one(tmp.path(), "ca.crt", 3).expect_err("over the budget");
        assert!(
            format!("{error:#}").contains("more than the limit"),
            "{error:#}"
        );
    }
}
