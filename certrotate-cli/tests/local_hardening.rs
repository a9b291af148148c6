//! Local mode's hardening, end to end through the binary: a rotation killed at random
//! moments never leaves an old key behind once rerun, an untrusted DIR is refused unless
//! `--insecure-skip-dir-checks` says otherwise, and a Secret folder linking outside DIR is
//! refused without touching its target.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::Instant;

const NS: &str = "envoy-gateway-system";

mod support;
use support::{Run, run};

fn ok(args: &[&str]) -> Run {
    let r = run(args);
    assert_eq!(
        r.code, 0,
        "{args:?}\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    r
}

/// Finding 7: `rotate --overwrite --wait` SIGKILLed at random moments across a whole run
/// (before: 7 of 20 kills left a `..vN` folder, one holding `next-ca.key`, for good). After
/// each kill a rerun finishes, and then every Secret folder holds only the version `..data`
/// points to, no temporary link, and no private key lies anywhere under DIR but in a
/// current version.
#[test]
fn sigkill_then_rerun_leaves_no_orphan_version_and_no_old_key() {
    const KILLS: u64 = 20;
    let bin = assert_cmd::cargo::cargo_bin("certrotate");
    let rotate = |dir: &str| {
        std::process::Command::new(&bin)
            .args([
                "-q",
                "rotate",
                "--dir",
                dir,
                "--overwrite",
                "--wait",
                "--convergence-interval",
                "0",
            ])
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole uninterrupted rotation takes here, to spread the kills over it.
    let full = {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_str().unwrap();
        ok(&["rotate", "--dir", dir]);
        #[allow(clippy::disallowed_methods)] // a test timing the binary it runs
        let start = Instant::now();
        let status = rotate(dir).wait().unwrap();
        assert!(status.success());
        start.elapsed()
    };
    // A small deterministic generator: the sweep is reproducible, and printed.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut orphans_seen = 0;
    for i in 0..KILLS {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_str().unwrap();
        ok(&["rotate", "--dir", dir]);
        // Anywhere in the run, a little past its usual end included.
        let at = full.mul_f64((i as f64 + (random() % 1000) as f64 / 1000.0) / KILLS as f64 * 1.1);
        let mut child = rotate(dir);
        std::thread::sleep(at);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        orphans_seen += count_orphans(tmp.path());

        ok(&[
            "rotate",
            "--dir",
            dir,
            "--overwrite",
            "--wait",
            "--convergence-interval",
            "0",
            "--force",
        ]);
        assert_clean(tmp.path(), &format!("killed after {at:?}"));
        let check = ok(&["check", "--dir", dir]);
        assert!(check.stdout.contains("9 of 9"), "{}", check.stdout);
    }
    println!(
        "SIGKILL sweep over a {full:?} rotation: {KILLS} kills, {orphans_seen} orphaned version folders left by them, none after the reruns"
    );
}

/// Finding 5: a world-writable DIR (mode 1777) is refused, naming DIR and why, by every
/// local command; `--insecure-skip-dir-checks` overrides it.
#[test]
fn an_untrusted_dir_is_refused_unless_overridden() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let d = dir.to_str().unwrap();
    ok(&["rotate", "--dir", d]);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    for args in [
        &["rotate", "--dir", d, "--overwrite"][..],
        &["check", "--dir", d],
        &["status", "--dir", d],
        &["renew", "--dir", d],
    ] {
        let r = run(args);
        assert_eq!(r.code, 1, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr
                .contains(&format!("{d}: writable by group or others (mode 1777)"))
                && r.stderr.contains("--insecure-skip-dir-checks"),
            "{args:?}: {}",
            r.stderr
        );
    }
    ok(&["check", "--dir", d, "--insecure-skip-dir-checks"]);
    ok(&[
        "rotate",
        "--dir",
        d,
        "--overwrite",
        "--insecure-skip-dir-checks",
    ]);
    let r = run(&["check", "--kube", "--insecure-skip-dir-checks"]);
    assert_eq!(r.code, 2, "a local-mode flag with --kube: {}", r.stderr);
}

/// Finding 1: on an installed DIR, a missing Secret folder replaced by a link to a folder
/// outside DIR is refused, with and without `--overwrite`, and the folder's files (a
/// `.bashrc`, which used to vanish) are untouched.
#[test]
fn a_secret_folder_linking_outside_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let home = tmp.path().join("home");
    let d = dir.to_str().unwrap();
    ok(&["rotate", "--dir", d]);
    std::fs::remove_dir_all(dir.join(NS).join("envoy")).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".bashrc"), "export PS1='$ '\n").unwrap();
    std::fs::write(home.join("tls.crt"), "mine\n").unwrap();
    symlink(&home, dir.join(NS).join("envoy")).unwrap();
    for args in [
        &["rotate", "--dir", d][..],
        &["rotate", "--dir", d, "--overwrite"],
    ] {
        let r = run(args);
        assert_eq!(r.code, 1, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(&format!(
                "{}: is a symbolic link",
                dir.join(NS).join("envoy").display()
            )),
            "{}",
            r.stderr
        );
    }
    let mut names: Vec<_> = std::fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [".bashrc", "tls.crt"]);
    assert!(
        std::fs::symlink_metadata(home.join("tls.crt"))
            .unwrap()
            .is_file()
    );
}

/// `..vN` folders that `..data` does not point to, in every Secret folder under `dir`.
fn count_orphans(dir: &Path) -> usize {
    secret_folders(dir)
        .iter()
        .map(|secret| {
            let current = std::fs::read_link(secret.join("..data")).ok();
            std::fs::read_dir(secret)
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_string_lossy().starts_with("..v")
                        && current.as_deref() != Some(Path::new(&name))
                })
                .count()
        })
        .sum()
}

fn secret_folders(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join(NS)) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect()
}

/// Only current versions, no temporary link, and private keys only in current versions.
fn assert_clean(dir: &Path, context: &str) {
    for secret in secret_folders(dir) {
        let current = std::fs::read_link(secret.join("..data")).unwrap();
        for entry in std::fs::read_dir(&secret).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            assert!(
                !name.starts_with("..v") || Path::new(&name) == current,
                "{context}: orphan {}",
                entry.path().display()
            );
            assert!(
                !name.ends_with("_tmp"),
                "{context}: {}",
                entry.path().display()
            );
        }
    }
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if meta.is_file() {
            let text = std::fs::read(&path).unwrap();
            if String::from_utf8_lossy(&text).contains("PRIVATE KEY-----") {
                let version = path.parent().unwrap();
                let current = std::fs::read_link(version.parent().unwrap().join("..data")).unwrap();
                assert_eq!(
                    version.file_name().unwrap(),
                    current.as_os_str(),
                    "{context}: a private key outside a current version: {}",
                    path.display()
                );
            }
        }
    }
}
