//! One test per finding of the hardening issue, run on both directory layouts.

#![allow(unused_imports)]

use super::*;

/// Finding 1: a Secret folder that is a link to a folder outside DIR. Before: the layout
/// was written into the target and its dotfiles deleted (without `--overwrite`), or its
/// files replaced by links (with it).
pub(crate) async fn finding_1_a_secret_folder_that_links_outside_is_refused(layout: DirLayout) {
    // Without --overwrite: an installed DIR whose envoy Secret went missing, replaced by a
    // link to someone's home folder; the run creates what is missing.
    let site = Site::with(layout);
    let clock = Arc::new(ManualClock::new(T0));
    install(&site.store(), &clock, 1).await;
    let link = site.folder("envoy");
    std::fs::remove_dir_all(&link).unwrap();
    symlink(&site.outside, &link).unwrap();
    let before = site.outside_tree();
    let err = engine(site.store(), &clock, 2)
        .run(&profile(), &options(false), RunMode::Once)
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
    let err = engine(site.store(), &clock, 2)
        .run(&profile(), &options(true), until_done())
        .await
        .expect_err("a linked Secret folder must be refused")
        .to_chain();
    assert!(err.contains(&envoy.display().to_string()), "{err}");
    assert_eq!(site.outside_tree(), before, "nothing outside DIR changed");
}

/// Finding 2: `..data` pointing at `..v1/../../../../outside` (with a copy of the version
/// there). Before: the rotation read the outside folder as the Secret and then removed it,
/// recursively, as "the previous version".
pub(crate) async fn finding_2_a_data_link_that_escapes_is_refused(layout: DirLayout) {
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

    let err = engine(site.store(), &clock, 2)
        .run(&profile(), &options(true), until_done())
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
pub(crate) async fn finding_3_key_links_to_files_outside_are_never_followed(layout: DirLayout) {
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
    let err = engine(site.store(), &clock, 1)
        .run(&profile(), &options(true), until_done())
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
pub(crate) async fn finding_4_devices_fifos_and_a_dangling_lock_link(layout: DirLayout) {
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
    let err = engine(site.store(), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
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
    let err = engine(site.store(), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
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
pub(crate) async fn finding_5_an_untrusted_dir_is_refused(layout: DirLayout) {
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
    let err = engine(site.store(), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
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
        let err = engine(site.store(), &clock, 1)
            .run(&profile(), &options(false), RunMode::Once)
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
    let err = engine(
        site.store().with_trust_checks(TrustChecks::SkipUnsafe),
        &clock,
        1,
    )
    .run(&profile(), &options(false), RunMode::Once)
    .await
    .expect_err("a CA Secret that issued no leaf must be refused")
    .to_chain();
    assert!(err.contains("issued none of the profile's leaves"), "{err}");
    // ...unless the caller says it put it there: then it is used, which is why the
    // override is unsafe.
    let report = engine(
        site.store().with_trust_checks(TrustChecks::SkipUnsafe),
        &clock,
        1,
    )
    .run(
        &profile(),
        &options(false).with_trust_existing_ca(true),
        RunMode::Once,
    )
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
pub(crate) async fn dir_as_a_link_planted_by_another_user_is_refused() {
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
    let err = engine(store.clone(), &clock, 2)
        .run(&profile(), &options(true), RunMode::Once)
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
    let err = engine(DirStore::new(hers.join("new")), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
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
pub(crate) async fn finding_7_orphaned_versions_are_removed_under_the_lock(layout: DirLayout) {
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
    engine(site.store(), &clock, 2)
        .run(&profile(), &options(true), RunMode::Once)
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
    engine(site.store(), &clock, 3)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap();
    assert_no_stale_keys(&site);
}

/// `tidy` on a read-only filesystem removes nothing and does not fail the run (nothing can
/// be written there either); once writable, the sweep happens.
#[tokio::test]
pub(crate) async fn tidy_skips_a_read_only_dir_and_sweeps_once_writable() {
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
pub(crate) async fn finding_8_a_key_starting_with_one_dot_round_trips(layout: DirLayout) {
    let site = Site::with(layout);
    let mut profile = Profile::envoy_gateway(NS);
    profile.hmac[0].key = ".hmac".into();
    profile.validate().unwrap();
    let hmac = ObjectRef::new(NS, &profile.hmac[0].secret);
    let clock = Arc::new(ManualClock::new(T0));
    let run = async |seed| {
        Engine::new(site.store())
            .with_clock(clock.clone())
            .with_entropy(SeededEntropy::new(seed))
            .run(&profile.clone(), &RotationPolicy::default(), RunMode::Once)
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
pub(crate) async fn finding_05_keys_of_the_longest_valid_length_round_trip(layout: DirLayout) {
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
