//! Local mode cannot be turned against the host: one test per finding of the hardening
//! issue (a Secret folder that is a link, `..data` escaping DIR, key links to files outside,
//! devices and FIFOs, an untrusted DIR, orphaned version folders, keys starting with one
//! dot), and a property test that random trees of files, folders, FIFOs and links under DIR,
//! with random crashes, never make a rotation touch anything outside DIR.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod contract;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use certrotate_core::plan::ObjectRef;
use certrotate_core::{PlanOptions, Profile, SeededEntropy};
use certrotate_kube::{
    DirLayout, DirStore, FaultyStore, ManualClock, Rotator, RunMode, SecretStore, TrustChecks,
    observe,
};
use contract::{HOUR, NS, T0, install, options, rotator, secret, until_done};
use proptest::prelude::*;

/// The tests below that take a [`DirLayout`], run once per layout of the directory store:
/// the standalone tree (`DIR/NAME/`) is held to the same threat model as the kubelet one.
macro_rules! per_layout {
    ($($test:ident),* $(,)?) => {
        mod kubelet {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(certrotate_kube::DirLayout::Kubelet).await;
                }
            )*
        }
        mod standalone {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(certrotate_kube::DirLayout::Standalone).await;
                }
            )*
        }
    };
}

per_layout!(
    finding_1_a_secret_folder_that_links_outside_is_refused,
    finding_2_a_data_link_that_escapes_is_refused,
    finding_3_key_links_to_files_outside_are_never_followed,
    finding_4_devices_fifos_and_a_dangling_lock_link,
    finding_5_an_untrusted_dir_is_refused,
    finding_7_orphaned_versions_are_removed_under_the_lock,
    finding_8_a_key_starting_with_one_dot_round_trips,
    finding_05_keys_of_the_longest_valid_length_round_trip,
);

/// Both layouts, for the property tests.
fn layouts() -> impl Strategy<Value = DirLayout> {
    prop_oneof![Just(DirLayout::Kubelet), Just(DirLayout::Standalone)]
}

/// Where the Secret folders of the profile's namespace are under `dir`.
fn secrets_root(dir: &Path, layout: DirLayout) -> PathBuf {
    if layout == DirLayout::Standalone {
        dir.to_owned()
    } else {
        dir.join(NS)
    }
}

/// Finding 1: a Secret folder that is a link to a folder outside DIR. Before: the layout
/// was written into the target and its dotfiles deleted (without `--overwrite`), or its
/// files replaced by links (with it).
async fn finding_1_a_secret_folder_that_links_outside_is_refused(layout: DirLayout) {
    // Without --overwrite: an installed DIR whose envoy Secret went missing, replaced by a
    // link to someone's home folder; the run creates what is missing.
    let site = Site::with(layout);
    let clock = Arc::new(ManualClock::new(T0));
    install(&site.store(), &clock, 1).await;
    let link = site.folder("envoy");
    std::fs::remove_dir_all(&link).unwrap();
    symlink(&site.outside, &link).unwrap();
    let before = site.outside_tree();
    let err = rotator(site.store(), options(false), &clock, 2)
        .run(RunMode::Once)
        .await
        .expect_err("a linked Secret folder must be refused")
        .to_chain();
    assert!(
        err.contains(&link.display().to_string()) && err.contains("symbolic link"),
        "{err}"
    );
    assert_eq!(site.outside_tree(), before, "nothing outside DIR changed");
    site.assert_no_canary(&err);

    // With --overwrite, on an installed DIR whose Secret folder is swapped for a link.
    let site = Site::with(layout);
    let clock = Arc::new(ManualClock::new(T0));
    install(&site.store(), &clock, 1).await;
    let envoy = site.folder("envoy");
    std::fs::remove_dir_all(&envoy).unwrap();
    for key in ["ca.crt", "tls.crt", "tls.key"] {
        std::fs::write(site.outside.join(key), format!("outside {key}")).unwrap();
    }
    symlink(&site.outside, &envoy).unwrap();
    let before = site.outside_tree();
    let err = rotator(site.store(), options(true), &clock, 2)
        .run(until_done())
        .await
        .expect_err("a linked Secret folder must be refused")
        .to_chain();
    assert!(err.contains(&envoy.display().to_string()), "{err}");
    assert_eq!(site.outside_tree(), before, "nothing outside DIR changed");
}

/// Finding 2: `..data` pointing at `..v1/../../../../outside` (with a copy of the version
/// there). Before: the rotation read the outside folder as the Secret and then removed it,
/// recursively, as "the previous version".
async fn finding_2_a_data_link_that_escapes_is_refused(layout: DirLayout) {
    let site = Site::with(layout);
    let clock = Arc::new(ManualClock::new(T0));
    install(&site.store(), &clock, 1).await;
    let envoy = site.folder("envoy");
    let current = std::fs::read_link(envoy.join("..data")).unwrap();
    copy_tree(&envoy.join(&current), &site.outside);
    // Up from the version to the Secret folder, from there to DIR, and one more.
    let escape = current.join(format!("{}outside", "../".repeat(site.depth() + 2)));
    std::fs::remove_file(envoy.join("..data")).unwrap();
    symlink(&escape, envoy.join("..data")).unwrap();
    let before = site.outside_tree();

    let err = rotator(site.store(), options(true), &clock, 2)
        .run(until_done())
        .await
        .expect_err("an escaping ..data must be refused")
        .to_chain();
    assert!(
        err.contains(&envoy.join("..data").display().to_string()) && err.contains("..vN"),
        "{err}"
    );
    assert_eq!(site.outside_tree(), before, "the outside folder is intact");
    // The version folder `..data` no longer points to is a crash leftover only when the
    // link has the layout's shape: here nothing was removed.
    assert!(envoy.join(&current).is_dir());
}

/// Finding 3: key files that are links to files outside DIR (think `/etc/shadow`). Before:
/// followed, and the content copied into a Secret.
async fn finding_3_key_links_to_files_outside_are_never_followed(layout: DirLayout) {
    // A plain (certgen-style) folder whose ca.crt is such a link.
    let site = Site::with(layout);
    let plain = site.folder("envoy-gateway");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(plain.join("tls.crt"), b"plain").unwrap();
    symlink(site.canary_path(), plain.join("ca.crt")).unwrap();
    let err = site
        .store()
        .read_secret(&secret("envoy-gateway"))
        .await
        .expect_err("a key linking outside must be refused")
        .to_chain();
    assert!(
        err.contains(&plain.join("ca.crt").display().to_string()),
        "{err}"
    );
    site.assert_no_canary(&err);
    let clock = Arc::new(ManualClock::new(T0));
    let err = rotator(site.store(), options(true), &clock, 1)
        .run(until_done())
        .await
        .expect_err("the rotation stops at the link")
        .to_chain();
    site.assert_no_canary(&err);
    site.assert_canary_nowhere_in_dir();

    // The layout: a key in the version folder, and a top-level key link, linking outside.
    let site = Site::with(layout);
    let clock = Arc::new(ManualClock::new(T0));
    install(&site.store(), &clock, 1).await;
    let envoy = site.folder("envoy");
    let version = envoy.join(std::fs::read_link(envoy.join("..data")).unwrap());
    std::fs::remove_file(version.join("tls.key")).unwrap();
    symlink(site.canary_path(), version.join("tls.key")).unwrap();
    let err = site
        .store()
        .read_secret(&secret("envoy"))
        .await
        .expect_err("a key linking outside must be refused")
        .to_chain();
    assert!(
        err.contains(&version.join("tls.key").display().to_string())
            && err.contains("symbolic link"),
        "{err}"
    );
    site.assert_no_canary(&err);

    let site = Site::with(layout);
    install(&site.store(), &clock, 1).await;
    let envoy = site.folder("envoy");
    std::fs::remove_file(envoy.join("ca.crt")).unwrap();
    symlink(site.canary_path(), envoy.join("ca.crt")).unwrap();
    let err = site
        .store()
        .read_secret(&secret("envoy"))
        .await
        .expect_err("a key link of another shape must be refused")
        .to_chain();
    assert!(
        err.contains(&envoy.join("ca.crt").display().to_string()) && err.contains("..data/ca.crt"),
        "{err}"
    );
    site.assert_no_canary(&err);
}

/// Finding 4: `..meta.json` linked to `/dev/zero` (before: read until OOM, the size limit
/// trusted `metadata().len()`, 0 for a device), a FIFO there (before: hung forever), a
/// device node planted in DIR, and a dangling `..lock` link (before: created a file outside
/// DIR).
async fn finding_4_devices_fifos_and_a_dangling_lock_link(layout: DirLayout) {
    let site = Site::with(layout);
    let clock = Arc::new(ManualClock::new(T0));
    install(&site.store(), &clock, 1).await;
    let envoy = site.folder("envoy");
    let version = envoy.join(std::fs::read_link(envoy.join("..data")).unwrap());
    let meta = version.join("..meta.json");

    std::fs::remove_file(&meta).unwrap();
    symlink("/dev/zero", &meta).unwrap();
    let err = read_within(&site.store(), "envoy", Duration::from_secs(20))
        .expect("a link to /dev/zero must be refused");
    assert!(
        err.contains(&meta.display().to_string()) && err.contains("symbolic link"),
        "{err}"
    );

    std::fs::remove_file(&meta).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &meta,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let err = read_within(&site.store(), "envoy", Duration::from_secs(20))
        .expect("a FIFO must be refused at once, not waited on");
    assert!(
        err.contains(&meta.display().to_string()) && err.contains("FIFO"),
        "{err}"
    );

    // A key file that is a FIFO, in a plain folder.
    let plain = site.folder("plain");
    std::fs::create_dir_all(&plain).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        plain.join("tls.crt"),
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let err = read_within(&site.store(), "plain", Duration::from_secs(20))
        .expect("a FIFO must be refused at once, not waited on");
    assert!(err.contains("FIFO"), "{err}");

    // A device node planted in the Secret folder itself (only root can make one).
    if is_root() {
        std::fs::remove_file(&meta).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &meta,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o600),
            rustix::fs::makedev(1, 5), // /dev/zero
        )
        .unwrap();
        let err = read_within(&site.store(), "envoy", Duration::from_secs(20))
            .expect("a device must be refused");
        assert!(err.contains("device"), "{err}");
    } else {
        println!("skipped the device-node case: making a device node needs root");
    }

    // A file larger than the limit is refused by reading, not by its metadata.
    std::fs::remove_file(&meta).unwrap();
    std::fs::write(
        &meta,
        vec![b' '; certrotate_kube::MAX_FILE_BYTES as usize + 1],
    )
    .unwrap();
    let err = read_within(&site.store(), "envoy", Duration::from_secs(20)).unwrap();
    assert!(err.contains("more than the limit"), "{err}");

    // A dangling ..lock link: a write must not create its target.
    let site = Site::with(layout);
    std::fs::create_dir_all(&site.dir).unwrap();
    let target = site.outside.join("created-by-lock");
    symlink(&target, site.dir.join("..lock")).unwrap();
    let before = site.outside_tree();
    let err = rotator(site.store(), options(false), &clock, 1)
        .run(RunMode::Once)
        .await
        .expect_err("a ..lock link must be refused")
        .to_chain();
    assert!(
        err.contains(&site.dir.join("..lock").display().to_string()),
        "{err}"
    );
    assert!(!target.exists(), "the lock link's target was created");
    assert_eq!(site.outside_tree(), before);

    // A FIFO as ..lock: refused, named as a FIFO (before: "No such device or address").
    std::fs::remove_file(site.dir.join("..lock")).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        site.dir.join("..lock"),
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let err = rotator(site.store(), options(false), &clock, 1)
        .run(RunMode::Once)
        .await
        .expect_err("a ..lock FIFO must be refused")
        .to_chain();
    assert!(
        err.contains(&site.dir.join("..lock").display().to_string()) && err.contains("a FIFO"),
        "{err}"
    );
}

/// Finding 5: a world-writable DIR (mode 1777) in which another user planted a CA Secret.
/// Before: root's rotation issued every leaf from the planted CA without a word. Also a
/// group-writable Secret folder, a Secret folder and a key file owned by another user; and
/// the override.
async fn finding_5_an_untrusted_dir_is_refused(layout: DirLayout) {
    // Another install's CA, planted.
    let attacker = Site::with(layout);
    let clock = Arc::new(ManualClock::new(T0));
    install(&attacker.store(), &clock, 7).await;

    let site = Site::with(layout);
    std::fs::create_dir_all(site.secrets_root()).unwrap();
    copy_tree(
        &attacker.folder("envoy-gateway-ca"),
        &site.folder("envoy-gateway-ca"),
    );
    std::fs::set_permissions(&site.dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    // What another user owns: the namespace folder (kubelet), the planted CA Secret's
    // folder itself (standalone, where DIR holds the Secret folders).
    let theirs = if layout == DirLayout::Standalone {
        site.folder("envoy-gateway-ca")
    } else {
        site.dir.join(NS)
    };
    if is_root() {
        chown_tree(&theirs, OTHER_UID);
    }
    let err = rotator(site.store(), options(false), &clock, 1)
        .run(RunMode::Once)
        .await
        .expect_err("a world-writable DIR must be refused")
        .to_chain();
    assert!(
        err.contains(&site.dir.display().to_string())
            && err.contains("writable by group or others (mode 1777)"),
        "{err}"
    );

    // Owned by another user (as root: chown works here).
    std::fs::set_permissions(&site.dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    if is_root() {
        let err = rotator(site.store(), options(false), &clock, 1)
            .run(RunMode::Once)
            .await
            .expect_err("a folder another user owns must be refused")
            .to_chain();
        assert!(
            err.contains(&theirs.display().to_string())
                && err.contains(&format!("owned by uid {OTHER_UID}")),
            "{err}"
        );
    } else {
        println!("skipped the other-owner cases: chown needs root");
    }

    // The override lets the planted CA Secret be read; it issued none of the leaves, so
    // the planner still refuses it (hardening round 3, finding 8)...
    let err = rotator(
        site.store().with_trust_checks(TrustChecks::SkipUnsafe),
        options(false),
        &clock,
        1,
    )
    .run(RunMode::Once)
    .await
    .expect_err("a CA Secret that issued no leaf must be refused")
    .to_chain();
    assert!(err.contains("issued none of the profile's leaves"), "{err}");
    // ...unless the caller says it put it there: then it is used, which is why the
    // override is unsafe.
    let report = rotator(
        site.store().with_trust_checks(TrustChecks::SkipUnsafe),
        options(false).with_trust_existing_ca(true),
        &clock,
        1,
    )
    .run(RunMode::Once)
    .await
    .unwrap();
    assert!(report.writes > 0);

    // A group-writable Secret folder, and a group-writable key file.
    let site = Site::with(layout);
    install(&site.store(), &clock, 1).await;
    let envoy = site.folder("envoy");
    std::fs::set_permissions(&envoy, std::fs::Permissions::from_mode(0o770)).unwrap();
    let err = site
        .store()
        .read_secret(&secret("envoy"))
        .await
        .unwrap_err()
        .to_chain();
    assert!(
        err.contains(&envoy.display().to_string()) && err.contains("mode 0770"),
        "{err}"
    );
    std::fs::set_permissions(&envoy, std::fs::Permissions::from_mode(0o700)).unwrap();
    let version = envoy.join(std::fs::read_link(envoy.join("..data")).unwrap());
    std::fs::set_permissions(
        version.join("tls.key"),
        std::fs::Permissions::from_mode(0o660),
    )
    .unwrap();
    let err = site
        .store()
        .read_secret(&secret("envoy"))
        .await
        .unwrap_err()
        .to_chain();
    assert!(
        err.contains(&version.join("tls.key").display().to_string()),
        "{err}"
    );
    std::fs::set_permissions(
        version.join("tls.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    if is_root() {
        std::os::unix::fs::chown(&envoy, Some(OTHER_UID), None).unwrap();
        let err = site
            .store()
            .read_secret(&secret("envoy"))
            .await
            .unwrap_err()
            .to_chain();
        assert!(
            err.contains(&envoy.display().to_string()) && err.contains("owned by uid"),
            "{err}"
        );
        assert!(
            site.store()
                .with_trust_checks(TrustChecks::SkipUnsafe)
                .read_secret(&secret("envoy"))
                .await
                .unwrap()
                .is_some()
        );
    }
}

/// DIR given as a link: followed if it is this user's (or root's), refused if another user
/// planted it (say `/tmp/certs -> /etc` in a sticky `/tmp`).
#[tokio::test]
async fn dir_as_a_link_planted_by_another_user_is_refused() {
    let site = Site::new();
    let clock = Arc::new(ManualClock::new(T0));
    install(&site.store(), &clock, 1).await;
    let link = site.tmp.path().join("link");
    symlink(&site.dir, &link).unwrap();
    let store = DirStore::new(&link);
    assert!(store.read_secret(&secret("envoy")).await.unwrap().is_some());
    // This user's link to a DIR not made yet: made, beneath the link's target (before: a
    // path-based create failed with "File exists" on the link).
    let later = site.tmp.path().join("later");
    symlink(site.tmp.path().join("made/dir"), &later).unwrap();
    install(&DirStore::new(&later), &clock, 1).await;
    assert!(site.tmp.path().join("made/dir").join(NS).is_dir());
    if !is_root() {
        println!("skipped the planted-link case: chown needs root");
        return;
    }
    std::os::unix::fs::lchown(&link, Some(OTHER_UID), None).unwrap();
    let err = store
        .read_secret(&secret("envoy"))
        .await
        .unwrap_err()
        .to_chain();
    assert!(
        err.contains(&link.display().to_string()) && err.contains("owned by uid 4242"),
        "{err}"
    );
    let err = rotator(store.clone(), options(true), &clock, 2)
        .run(RunMode::Once)
        .await
        .expect_err("a planted DIR link must be refused")
        .to_chain();
    assert!(err.contains("owned by uid 4242"), "{err}");

    // Red-team N1: `DIR/` and `DIR/.` made the kernel follow the link under O_NOFOLLOW, so
    // the check saw the target folder and passed.
    for spelled in [
        format!("{}/", link.display()),
        format!("{}/.", link.display()),
    ] {
        let err = DirStore::new(&spelled)
            .read_secret(&secret("envoy"))
            .await
            .expect_err(&spelled)
            .to_chain();
        assert!(err.contains("owned by uid 4242"), "{spelled}: {err}");
    }
    // A path ending in `..` reaches a folder through the name before it: refused.
    let dotdot = site.dir.join(NS).join("..");
    let err = DirStore::new(&dotdot)
        .read_secret(&secret("envoy"))
        .await
        .expect_err("a DIR ending in ..")
        .to_chain();
    assert!(err.contains("ends in `..`"), "{err}");

    // Red-team N2: this user's link to a name where another user then planted a link.
    // Every link on the way is judged, not only the first.
    let chain = site.tmp.path().join("chain");
    let middle = site.tmp.path().join("middle");
    symlink(&middle, &chain).unwrap();
    symlink(&site.dir, &middle).unwrap();
    let store = DirStore::new(&chain);
    assert!(
        store.read_secret(&secret("envoy")).await.unwrap().is_some(),
        "own links"
    );
    std::os::unix::fs::lchown(&middle, Some(OTHER_UID), None).unwrap();
    let err = store
        .read_secret(&secret("envoy"))
        .await
        .expect_err("a planted link behind DIR's link")
        .to_chain();
    assert!(
        err.contains(&middle.display().to_string()) && err.contains("owned by uid 4242"),
        "{err}"
    );

    // Red-team R4-1: DIR to be made beneath another user's link: refused before anything is
    // made (before: a path-based create made the folder through her link, then the walk
    // refused it).
    let hers = site.tmp.path().join("hers");
    let elsewhere = site.tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, &hers).unwrap();
    std::os::unix::fs::lchown(&hers, Some(OTHER_UID), None).unwrap();
    let err = rotator(DirStore::new(hers.join("new")), options(false), &clock, 1)
        .run(RunMode::Once)
        .await
        .expect_err("a DIR to be made through her link")
        .to_chain();
    assert!(err.contains("owned by uid 4242"), "{err}");
    assert!(!elsewhere.join("new").exists(), "made through her link");

    // Red-team R3-1: another user's link as a folder *within* the target of this user's
    // link (`certs -> shared/sub/dir`, with `sub` hers): judged too, as is one on the path
    // as given.
    let shared = site.tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    symlink(site.dir.parent().unwrap(), shared.join("sub")).unwrap();
    std::os::unix::fs::lchown(shared.join("sub"), Some(OTHER_UID), None).unwrap();
    let dir_name = site.dir.file_name().unwrap();
    let certs = site.tmp.path().join("certs");
    symlink(shared.join("sub").join(dir_name), &certs).unwrap();
    for path in [certs, shared.join("sub").join(dir_name)] {
        let err = DirStore::new(&path)
            .read_secret(&secret("envoy"))
            .await
            .expect_err("a planted link within a link's target")
            .to_chain();
        assert!(
            err.contains(&shared.join("sub").display().to_string())
                && err.contains("owned by uid 4242"),
            "{}: {err}",
            path.display()
        );
    }
}

/// Finding 7: a run killed between swapping `..data` and removing the previous version, or
/// while filling a new one, left `..vN` folders (one holding `next-ca.key`) for good.
/// Now the next write of that Secret removes them, and `tidy` (run before every rotation)
/// removes them everywhere.
async fn finding_7_orphaned_versions_are_removed_under_the_lock(layout: DirLayout) {
    let site = Site::with(layout);
    let clock = Arc::new(ManualClock::new(T0));
    install(&site.store(), &clock, 1).await;
    // What a kill leaves: a filled version never swapped in, the previous version never
    // removed, and a temporary link.
    let ca = site.folder("envoy-gateway-ca");
    plant_orphans(&ca);
    let envoy = site.folder("envoy");
    plant_orphans(&envoy);

    // One rotation step writes the CA Secret: its orphans go.
    rotator(site.store(), options(true), &clock, 2)
        .run(RunMode::Once)
        .await
        .unwrap();
    assert_only_current_versions(&ca);
    assert!(
        !site.dir.join("..v99").exists() && !ca.join("..v99").exists(),
        "the orphan with next-ca.key is gone"
    );

    // `tidy` sweeps Secrets no write touched.
    site.store().tidy().unwrap();
    assert_only_current_versions(&envoy);

    // A whole rotation leaves one version per Secret and no key outside it.
    rotator(site.store(), options(true), &clock, 3)
        .run(until_done())
        .await
        .unwrap();
    assert_no_stale_keys(&site);
}

/// `tidy` on a read-only filesystem removes nothing and does not fail the run (nothing can
/// be written there either); once writable, the sweep happens.
#[tokio::test]
async fn tidy_skips_a_read_only_dir_and_sweeps_once_writable() {
    let Some(mount) = ReadOnlyCapable::mount() else {
        return;
    };
    let store = DirStore::new(&mount.0);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let ca = mount.0.join(NS).join("envoy-gateway-ca");
    plant_orphans(&ca);
    mount.remount("ro");
    store.tidy().unwrap();
    assert!(
        ca.join("..v99").exists(),
        "nothing can be removed read-only"
    );
    mount.remount("rw");
    store.tidy().unwrap();
    assert_only_current_versions(&ca);
}

/// Finding 8: a profile whose HMAC key is named `.hmac`. Before: never read back (dotfiles
/// were hidden), so the HMAC was regenerated on every run.
async fn finding_8_a_key_starting_with_one_dot_round_trips(layout: DirLayout) {
    let site = Site::with(layout);
    let mut profile = Profile::envoy_gateway(NS);
    profile.hmac[0].key = ".hmac".into();
    profile.validate().unwrap();
    let hmac = ObjectRef::new(NS, &profile.hmac[0].secret);
    let clock = Arc::new(ManualClock::new(T0));
    let run = async |seed| {
        Rotator::new(site.store(), profile.clone(), PlanOptions::default())
            .with_clock(clock.clone())
            .with_entropy(SeededEntropy::new(seed))
            .run(RunMode::Once)
            .await
    };
    run(1).await.unwrap();
    let first = site.store().read_secret(&hmac).await.unwrap().unwrap();
    assert_eq!(first.data[".hmac"].len(), profile.hmac[0].length);
    let rerun = run(2).await.unwrap();
    assert_eq!(rerun.writes, 0, "a rerun writes nothing");
    let second = site.store().read_secret(&hmac).await.unwrap().unwrap();
    assert_eq!(
        first.data[".hmac"], second.data[".hmac"],
        "the HMAC is kept"
    );
    assert!(
        std::fs::symlink_metadata(site.folder(&profile.hmac[0].secret).join(".hmac"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "consumers find .hmac where the kubelet puts it"
    );
}

/// Red-team finding 05: a key of 250 to 253 characters (Kubernetes allows 253). Before: the
/// temporary link `..KEY_tmp` exceeded NAME_MAX, so the write failed with "File name too
/// long" after `..data` was swapped, and every rerun failed in its cleanup.
async fn finding_05_keys_of_the_longest_valid_length_round_trip(layout: DirLayout) {
    use certrotate_kube::{NewSecret, SecretUpdate};
    let site = Site::with(layout);
    let store = site.store();
    let id = secret("long-keys");
    let keys: Vec<String> = (250..=253).map(|n| "k".repeat(n)).collect();
    let mut new = NewSecret::default();
    new.secret_type = "Opaque".into();
    new.data = keys
        .iter()
        .map(|k| (k.clone(), k.len().to_string().into_bytes()))
        .collect();
    let version = store.create_secret(&id, &new).await.unwrap();
    let mut update = SecretUpdate::default();
    update.data.insert(keys[0].clone(), None);
    update
        .data
        .insert(keys[3].clone(), Some(b"changed".to_vec()));
    store.update_secret(&id, &version, &update).await.unwrap();
    let read = store.read_secret(&id).await.unwrap().unwrap();
    let expected: BTreeMap<String, Vec<u8>> = [
        (keys[1].clone(), b"251".to_vec()),
        (keys[2].clone(), b"252".to_vec()),
        (keys[3].clone(), b"changed".to_vec()),
    ]
    .into();
    assert_eq!(read.data, expected);
    let folder = site.folder("long-keys");
    assert_eq!(std::fs::read(folder.join(&keys[3])).unwrap(), b"changed");
    assert!(std::fs::symlink_metadata(folder.join(&keys[0])).is_err());
    // Nothing temporary is left, and the tidy a rerun starts with succeeds.
    store.tidy().unwrap();
    let names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("_tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

/// Readers do not take the lock: a read racing writes that add and remove keys (as the
/// leaves phase removes `next-ca.*`) sees one whole version or the next, never an error.
/// Before: a key link removed between the listing and its `readlink` failed the read with
/// "No such file or directory", which failed a racing rotation.
#[test]
fn reads_racing_writes_that_remove_keys_never_fail_kubelet() {
    reads_racing_writes_that_remove_keys_never_fail(DirLayout::Kubelet);
}

#[test]
fn reads_racing_writes_that_remove_keys_never_fail_standalone() {
    reads_racing_writes_that_remove_keys_never_fail(DirLayout::Standalone);
}

fn reads_racing_writes_that_remove_keys_never_fail(layout: DirLayout) {
    use certrotate_kube::{NewSecret, SecretUpdate};
    let site = Site::with(layout);
    let store = site.store();
    let secret = ObjectRef::new(NS, "racing");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut new = NewSecret::default();
    new.secret_type = "Opaque".into();
    new.data = BTreeMap::from([("a".to_owned(), b"a".to_vec())]);
    let mut version = runtime
        .block_on(store.create_secret(&secret, &new))
        .unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (store, secret, done) = (store.clone(), secret.clone(), done.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let mut reads = 0u32;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let read = runtime.block_on(store.read_secret(&secret));
                let read = read.unwrap_or_else(|e| panic!("read {reads} failed: {e}"));
                let data = read.expect("the Secret exists").data;
                // One whole version: `a` always, `b` and `c` together or not at all.
                assert_eq!(data["a"], b"a");
                assert_eq!(data.contains_key("b"), data.contains_key("c"), "{data:?}");
                reads += 1;
            }
            reads
        })
    };
    for i in 0..300 {
        let value = (i % 2 == 0).then(|| b"x".to_vec());
        let mut update = SecretUpdate::default();
        update.data = BTreeMap::from([("b".to_owned(), value.clone()), ("c".to_owned(), value)]);
        version = runtime
            .block_on(store.update_secret(&secret, &version, &update))
            .unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.join().expect("no read failed");
    assert!(reads > 0);
}

/// Key names are checked as Kubernetes checks them: one leading dot is fine, `..` is the
/// layout's.
#[test]
fn profile_checks_secret_key_names_as_kubernetes_does() {
    use certrotate_core::profile::validate_secret_key;
    for ok in [
        ".hmac",
        "hmac-secret",
        "tls.crt",
        "a_b",
        "A1",
        &"k".repeat(253),
    ] {
        assert!(validate_secret_key(ok).is_ok(), "{ok}");
    }
    for bad in ["", ".", "..", "..data", "a/b", "a b", "ü", &"k".repeat(254)] {
        assert!(validate_secret_key(bad).is_err(), "{bad:?}");
    }
    let mut profile = Profile::envoy_gateway(NS);
    profile.hmac[0].key = "..hmac".into();
    let err = profile.validate().unwrap_err().to_chain();
    assert!(err.contains("hmac[0].key"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Every key Kubernetes allows round-trips through the directory store (create, then an
    /// update that sets and removes keys), whatever it looks like: `.hmac`, `data`, `v1`,
    /// `-`, `_tmp`, ... Only `..`-names are the layout's.
    #[test]
    fn every_valid_key_round_trips(
        layout in layouts(),
        first in proptest::collection::btree_map(valid_key(), proptest::collection::vec(any::<u8>(), 0..32), 1..6),
        set in proptest::collection::btree_map(valid_key(), proptest::collection::vec(any::<u8>(), 0..32), 0..4),
        remove in proptest::collection::vec(any::<proptest::sample::Index>(), 0..3),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let store = DirStore::new(tmp.path().join("dir")).with_layout(layout);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let id = secret("keys");
            let mut new = certrotate_kube::NewSecret::default();
            new.secret_type = "Opaque".into();
            new.data = first.clone();
            let version = store.create_secret(&id, &new).await.unwrap();
            let read = store.read_secret(&id).await.unwrap().unwrap();
            prop_assert_eq!(&read.data, &first);

            let mut update = certrotate_kube::SecretUpdate::default();
            let mut expected = first.clone();
            let names: Vec<&String> = first.keys().collect();
            for i in &remove {
                let key = names[i.index(names.len())];
                update.data.insert(key.clone(), None);
                expected.remove(key);
            }
            for (k, v) in &set {
                update.data.insert(k.clone(), Some(v.clone()));
                expected.insert(k.clone(), v.clone());
            }
            store.update_secret(&id, &version, &update).await.unwrap();
            let read = store.read_secret(&id).await.unwrap().unwrap();
            prop_assert_eq!(&read.data, &expected);
            // What consumers open: each key's link, and nothing for removed keys.
            let folder = secrets_root(&tmp.path().join("dir"), layout).join("keys");
            for (k, v) in &expected {
                prop_assert_eq!(&std::fs::read(folder.join(k)).unwrap(), v);
            }
            for k in first.keys().filter(|k| !expected.contains_key(*k)) {
                prop_assert!(std::fs::symlink_metadata(folder.join(k)).is_err(), "{} left", k);
            }
            Ok(())
        })?;
    }
}

/// Keys Kubernetes allows, biased towards the ones that look like the layout's names.
fn valid_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[-._a-zA-Z0-9]{1,24}",
        // The longest keys Kubernetes allows (253): names built from them must still fit.
        "[a-z]{240,253}",
        "\\.[-_a-zA-Z0-9][-._a-zA-Z0-9]{0,8}",
        proptest::sample::select(vec![
            ".hmac",
            "data",
            "v1",
            "_tmp",
            "meta.json",
            "-",
            "lock"
        ])
        .prop_map(String::from),
    ]
    .prop_filter("a valid Secret key", |k| {
        certrotate_core::profile::validate_secret_key(k).is_ok()
    })
}

// ---- the property test -------------------------------------------------------------------

/// The Secrets of the envoy-gateway profile.
const SECRETS: &[&str] = &[
    "envoy-gateway-ca",
    "envoy-gateway",
    "envoy",
    "envoy-rate-limit",
    "envoy-oidc-hmac",
];

/// Where a planted thing goes, relative to DIR.
const PLANT_FOLDERS: &[&str] = &[
    "",
    NS,
    "envoy-gateway-system/envoy",
    "envoy-gateway-system/envoy-gateway-ca",
    "envoy-gateway-system/envoy-oidc-hmac",
    "envoy-gateway-system/envoy/..v1",
    "envoy-gateway-system/envoy-gateway-ca/..v1",
    "envoy-gateway-system/envoy-gateway-ca/..v2",
    "other",
];
/// Its name.
const PLANT_NAMES: &[&str] = &[
    "..data",
    "..lock",
    "..meta.json",
    "..data_tmp",
    "..tls.crt_tmp",
    "..v1",
    "..v2",
    "..v7",
    "ca.crt",
    "tls.crt",
    "tls.key",
    "ca.key",
    "hmac-secret",
    ".hmac",
    "envoy",
    "envoy-gateway-ca",
    "envoy-gateway-system",
    "junk",
];

/// What is planted.
#[derive(Clone, Debug)]
enum Plant {
    File(Vec<u8>),
    Folder,
    Fifo,
    /// An absolute link to the canary file outside DIR.
    LinkToCanary,
    /// A relative link climbing out of DIR to the canary.
    RelativeLinkToCanary,
    /// A link to the folder outside DIR.
    LinkToOutside,
    /// A link to a name outside DIR that does not exist.
    Dangling,
    /// A link to a sibling inside DIR.
    LinkInside(&'static str),
    /// The escape of finding 2.
    DotDot,
}

fn plant() -> impl Strategy<Value = Plant> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Plant::File),
        Just(Plant::Folder),
        Just(Plant::Fifo),
        Just(Plant::LinkToCanary),
        Just(Plant::RelativeLinkToCanary),
        Just(Plant::LinkToOutside),
        Just(Plant::Dangling),
        proptest::sample::select(PLANT_NAMES).prop_map(Plant::LinkInside),
        Just(Plant::DotDot),
    ]
}

/// One step of a run.
#[derive(Clone, Debug)]
enum Op {
    /// A rotation (`--overwrite`), crashing before write N if set.
    Rotate {
        crash_at: Option<u64>,
    },
    /// Create what is missing (no overwrite).
    Install,
    Renew,
    Check,
    Status,
    Tidy,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        proptest::option::of(1..14u64).prop_map(|crash_at| Op::Rotate { crash_at }),
        Just(Op::Install),
        Just(Op::Renew),
        Just(Op::Check),
        Just(Op::Status),
        Just(Op::Tidy),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random trees under DIR (on a fresh or an installed DIR), then random rotations,
    /// installs, renewals, checks, status reads and sweeps, some crashing part-way: nothing
    /// outside DIR is created, changed or deleted (the sibling tree is compared, content and
    /// metadata), and nothing outside is read (the canary's content, linked from inside,
    /// appears in no error, no Secret and no file under DIR).
    #[test]
    fn nothing_outside_dir_is_touched(
        layout in layouts(),
        installed in any::<bool>(),
        plants in proptest::collection::vec(
            (proptest::sample::select(PLANT_FOLDERS), proptest::sample::select(PLANT_NAMES), plant()),
            1..8,
        ),
        ops in proptest::collection::vec(op(), 1..5),
    ) {
        let site = Site::with(layout);
        if installed {
            copy_tree(&installed_template(layout), &site.dir);
        } else {
            std::fs::create_dir(&site.dir).unwrap();
        }
        for (folder, name, what) in &plants {
            site.plant(folder, name, what);
        }
        let before = site.outside_tree();
        let texts = run_ops(&site, &ops);
        prop_assert_eq!(site.outside_tree(), before);
        for text in &texts {
            prop_assert!(!text.contains(&site.canary), "canary read: {}", text);
        }
        site.assert_canary_nowhere_in_dir();
    }
}

/// Runs `ops` on the site's store; every error and every Secret's data, as text.
fn run_ops(site: &Site, ops: &[Op]) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let clock = Arc::new(ManualClock::new(T0));
        let mut texts = Vec::new();
        let mut note = |r: Result<String, String>| match r {
            Ok(text) | Err(text) => texts.push(text),
        };
        for (i, op) in ops.iter().enumerate() {
            let seed = i as u64 + 1;
            let store = site.store();
            match op {
                Op::Rotate { crash_at } => {
                    let result = match crash_at {
                        Some(n) => rotator(
                            FaultyStore::new(store).crash_at_write(*n),
                            options(true),
                            &clock,
                            seed,
                        )
                        .run(until_done())
                        .await
                        .map(|r| r.summary.to_string()),
                        None => rotator(store, options(true), &clock, seed)
                            .run(until_done())
                            .await
                            .map(|r| r.summary.to_string()),
                    };
                    note(result.map_err(|e| e.to_chain()));
                }
                Op::Install => note(
                    rotator(store, options(false), &clock, seed)
                        .run(RunMode::Once)
                        .await
                        .map(|r| r.summary.to_string())
                        .map_err(|e| e.to_chain()),
                ),
                Op::Renew => {
                    let mut o = options(false);
                    o.renew_before = Some(Duration::from_secs(10 * 365 * 86400));
                    note(
                        rotator(store, o, &clock, seed)
                            .run(RunMode::Once)
                            .await
                            .map(|r| r.summary.to_string())
                            .map_err(|e| e.to_chain()),
                    );
                }
                Op::Check => note(
                    observe(&store, &contract::profile())
                        .await
                        .map(|o| format!("{o:?}"))
                        .map_err(|e| e.to_chain()),
                ),
                Op::Status => note(
                    rotator(store, PlanOptions::default(), &clock, seed)
                        .plan()
                        .await
                        .map(|p| format!("{p:?}"))
                        .map_err(|e| e.to_chain()),
                ),
                Op::Tidy => note(
                    store
                        .tidy()
                        .map(|()| String::new())
                        .map_err(|e| e.to_chain()),
                ),
            }
            clock.advance(HOUR);
        }
        // Every Secret as the store reads it now, with its data as text.
        for name in SECRETS {
            note(
                site.store()
                    .read_secret(&secret(name))
                    .await
                    .map(|s| {
                        s.map(|s| {
                            s.data
                                .values()
                                .map(|v| String::from_utf8_lossy(v).into_owned())
                                .collect::<Vec<_>>()
                                .join("\n")
                        })
                        .unwrap_or_default()
                    })
                    .map_err(|e| e.to_chain()),
            );
        }
        texts
    })
}

/// An installed DIR, made once and copied into each case.
fn installed_template(layout: DirLayout) -> PathBuf {
    static KUBELET: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    static STANDALONE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let template = if layout == DirLayout::Standalone {
        &STANDALONE
    } else {
        &KUBELET
    };
    template
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap().keep().join("dir");
            let store = DirStore::new(&dir).with_layout(layout);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let clock = Arc::new(ManualClock::new(T0));
                install(&store, &clock, 1).await;
            });
            dir
        })
        .clone()
}

// ---- support ----------------------------------------------------------------------------

/// The uid that plays the other local user.
const OTHER_UID: u32 = 4242;

/// A temporary folder holding DIR and, beside it, a folder an attacker would aim at, with
/// a canary file whose content must never be read.
struct Site {
    tmp: tempfile::TempDir,
    dir: PathBuf,
    outside: PathBuf,
    canary: String,
    layout: DirLayout,
}

impl Site {
    fn new() -> Self {
        Self::with(DirLayout::Kubelet)
    }

    /// A site whose store uses `layout`.
    fn with(layout: DirLayout) -> Self {
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

    fn store(&self) -> DirStore {
        DirStore::new(&self.dir).with_layout(self.layout)
    }

    /// Where the Secret folders are: `DIR/NS` (kubelet), DIR (standalone).
    fn secrets_root(&self) -> PathBuf {
        secrets_root(&self.dir, self.layout)
    }

    /// The folder of Secret `name` of the profile's namespace.
    fn folder(&self, name: &str) -> PathBuf {
        self.secrets_root().join(name)
    }

    /// How many folders below DIR a Secret folder is.
    fn depth(&self) -> usize {
        if self.layout == DirLayout::Standalone {
            1
        } else {
            2
        }
    }

    fn canary_path(&self) -> PathBuf {
        self.outside.join("canary")
    }

    /// Every entry beside DIR (the temporary folder itself and the outside folder): kind,
    /// mode, owner, size, mtime, ctime, and content or link target.
    fn outside_tree(&self) -> BTreeMap<PathBuf, String> {
        let mut tree = BTreeMap::new();
        snapshot(self.tmp.path(), self.tmp.path(), Some(&self.dir), &mut tree);
        tree
    }

    fn assert_no_canary(&self, text: &str) {
        assert!(!text.contains(&self.canary), "canary read: {text}");
    }

    /// No regular file under DIR holds the canary's content.
    fn assert_canary_nowhere_in_dir(&self) {
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
    fn plant(&self, folder: &str, name: &str, what: &Plant) {
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

fn snapshot(base: &Path, path: &Path, skip: Option<&Path>, tree: &mut BTreeMap<PathBuf, String>) {
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
fn copy_tree(from: &Path, to: &Path) {
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

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), None).unwrap();
    if std::fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Reads Secret `name` on a thread, failing if it does not answer within `limit` (a FIFO
/// waited on never answers). The error's text.
fn read_within(store: &DirStore, name: &str, limit: Duration) -> Result<String, String> {
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
fn plant_orphans(secret: &Path) {
    let current = std::fs::read_link(secret.join("..data")).unwrap();
    copy_tree(&secret.join(&current), &secret.join("..v0"));
    std::fs::create_dir(secret.join("..v99")).unwrap();
    std::fs::write(secret.join("..v99").join("next-ca.key"), "ORPHANED KEY").unwrap();
    symlink("..v99", secret.join("..data_tmp")).unwrap();
}

/// The Secret folder holds exactly one version folder, the one `..data` points to, and
/// no temporary link.
fn assert_only_current_versions(secret: &Path) {
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
fn assert_no_stale_keys(site: &Site) {
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
trait ToChain {
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
struct ReadOnlyCapable(PathBuf);

impl ReadOnlyCapable {
    fn mount() -> Option<Self> {
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

    fn remount(&self, mode: &str) {
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
