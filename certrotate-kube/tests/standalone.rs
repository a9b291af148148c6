//! The standalone layout of the directory store: exactly the tree Envoy Gateway's
//! standalone mode reads (`<configHome>/certs/NAME/`, github.com/envoyproxy/gateway v1.9.0
//! `internal/infrastructure/host/paths.go:68-71`), files of upstream's own in those folders
//! left alone whatever they are, and a tree `envoy-gateway certgen --local` wrote adopted
//! (`internal/cmd/certgen.go:173-212`, `outputCertsForLocal`: files written in place, 0644).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod contract;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use certrotate_core::plan::Phase;
use certrotate_core::{Ca, CaParams, SeededEntropy};
use certrotate_kube::{
    Clock, DirLayout, DirStore, ManualClock, RunMode, SecretStore, SystemClock, observe,
};
use contract::{
    T0, assert_trusted, count_certs, engine, install, options, profile, secret, until_done,
};

/// The component folders upstream reads, each with `ca.crt`, `tls.crt` and `tls.key`.
const COMPONENTS: [&str; 3] = ["envoy-gateway", "envoy", "envoy-rate-limit"];
const TLS_FILES: [&str; 3] = ["ca.crt", "tls.crt", "tls.key"];

fn standalone(dir: &Path) -> DirStore {
    DirStore::new(dir).with_layout(DirLayout::Standalone)
}

/// A fresh install writes the tree upstream reads and nothing else: no namespace level,
/// `DIR/{envoy-gateway,envoy,envoy-rate-limit}/{ca.crt,tls.crt,tls.key}` and
/// `DIR/envoy-oidc-hmac/hmac-secret`, each a link into the folder's `..data` resolving to a
/// regular file 0600 in a 0700 version folder, plus the CA Secret's `DIR/envoy-gateway-ca/`.
#[tokio::test]
async fn the_tree_is_exactly_what_upstream_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let clock = Arc::new(ManualClock::new(T0));
    install(&standalone(&dir), &clock, 1).await;
    assert_eq!(
        visible_names(&dir),
        [
            "envoy",
            "envoy-gateway",
            "envoy-gateway-ca",
            "envoy-oidc-hmac",
            "envoy-rate-limit"
        ],
        "DIR holds the Secret folders (and ..lock), no namespace folder"
    );
    for component in COMPONENTS {
        assert_eq!(
            visible_names(&dir.join(component)),
            TLS_FILES,
            "{component}"
        );
    }
    assert_eq!(visible_names(&dir.join("envoy-oidc-hmac")), ["hmac-secret"]);
    let consumed = COMPONENTS
        .iter()
        .flat_map(|c| TLS_FILES.map(|f| dir.join(c).join(f)))
        .chain([dir.join("envoy-oidc-hmac/hmac-secret")]);
    for path in consumed {
        assert_is_layout_link(&path);
    }
    assert_eq!(
        std::fs::read(dir.join("envoy-oidc-hmac/hmac-secret"))
            .unwrap()
            .len(),
        32,
        "upstream's HMAC length"
    );
    // What the store reads back is what it wrote.
    let observed = observe(&standalone(&dir), &profile()).await.unwrap();
    assert_eq!(observed.secrets.len(), 5);
    assert_trusted(&observed, T0, "standalone install");
}

/// Files of upstream's own in the Secret folders (its SDS JSON files in `envoy/`), and
/// anything else a stranger put beside ours (a FIFO, a link to a file outside, a file over
/// the read limit, a folder, a group-writable file, another user's file) are never opened,
/// changed or removed by a whole rotation: certrotate owns upstream's file names and its own
/// keys only.
#[tokio::test]
async fn files_that_are_not_the_secrets_are_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let canary = format!("CANARY-{}", std::process::id());
    std::fs::write(outside.join("canary"), &canary).unwrap();
    let store = standalone(&dir);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;

    let envoy = dir.join("envoy");
    write_sds_files(&envoy);
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        envoy.join("pipe.json"),
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    symlink(outside.join("canary"), envoy.join("peek.json")).unwrap();
    std::fs::write(
        envoy.join("big.json"),
        vec![b' '; certrotate_kube::MAX_FILE_BYTES as usize + 1],
    )
    .unwrap();
    std::fs::create_dir(envoy.join("sub")).unwrap();
    std::fs::write(envoy.join("sub/notes"), "notes").unwrap();
    let shared = dir.join("envoy-gateway/shared.json");
    std::fs::write(&shared, "{}").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o666)).unwrap();
    if rustix::process::geteuid().is_root() {
        let theirs = dir.join("envoy-rate-limit/theirs.json");
        std::fs::write(&theirs, "{}").unwrap();
        std::os::unix::fs::lchown(&theirs, Some(4242), None).unwrap();
    } else {
        println!("skipped the other user's file: chown needs root");
    }
    let before = foreign_entries(&dir);

    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap();
    assert_eq!(report.phase, Phase::Stable);
    store.tidy().unwrap();
    assert_eq!(foreign_entries(&dir), before, "foreign entries changed");
    let observed = observe(&store, &profile()).await.unwrap();
    assert_trusted(
        &observed,
        clock.now(),
        "after a rotation beside foreign files",
    );
    let envoy_keys: Vec<&String> = observed.secrets[&secret("envoy")].data.keys().collect();
    assert_eq!(
        envoy_keys, TLS_FILES,
        "no foreign file read into the Secret"
    );
    let all = format!("{report:?}{observed:?}");
    assert!(!all.contains(&canary), "the canary was read");
}

/// A tree as `certgen --local` writes it, made by hand: folders 0755, files 0644 written in
/// place (no links), SDS JSON files beside them in `envoy/` (written by the controller at
/// start, `internal/infrastructure/host/infra.go:96-131`). Adopted: read as it is, then a
/// rotation that carries its CA as the previous one, converting each folder it writes.
#[tokio::test]
async fn adopting_a_tree_certgen_local_wrote_by_hand() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    write_certgen_local_tree(&dir, T0);
    write_sds_files(&dir.join("envoy"));
    let clock = Arc::new(ManualClock::new(T0));
    adopt(&dir, &clock).await;
}

/// The same with the tree upstream's own binary writes (`envoy-gateway certgen --local
/// --config-home TMP`, HOME=TMP), when `test-support/controlplane/build.sh` built it.
#[tokio::test]
async fn adopting_a_tree_upstreams_certgen_local_wrote() {
    let bin = match certrotate_controlplane::Binaries::locate() {
        Ok(bins) => bins.envoy_gateway_controller(),
        Err(why) => {
            certrotate_controlplane::skip_or_fail("adopting certgen --local's tree", &why);
            return;
        }
    };
    if !bin.is_file() {
        certrotate_controlplane::skip_or_fail(
            "adopting certgen --local's tree",
            &format!("{} is not built", bin.display()),
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let output = std::process::Command::new(&bin)
        .args(["certgen", "--local", "--config-home"])
        .arg(home.join("config"))
        .env("HOME", home)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "certgen --local: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = home.join("config/certs");
    // As upstream writes them: regular files, world-readable keys.
    for component in COMPONENTS {
        for file in TLS_FILES {
            let meta = std::fs::symlink_metadata(dir.join(component).join(file)).unwrap();
            assert!(meta.is_file(), "{component}/{file}");
            assert_eq!(meta.mode() & 0o777, 0o644, "{component}/{file}");
        }
    }
    write_sds_files(&dir.join("envoy"));
    // certgen stamps its certificates with the real clock.
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    adopt(&dir, &clock).await;
    println!(
        "adopted the tree of {} certgen --local: read as written, rotated from its CA",
        bin.display()
    );
}

/// Adopts the certgen tree in `dir`: read as plain folders (only upstream's names), a run
/// without a rotation changes no TLS file (there is no CA key to sign with), then a requested
/// rotation carries the old CA in every `ca.crt` during trust, ends on the new one with
/// every folder converted to the `..data` layout, keys 0600, and the SDS files as they were.
async fn adopt(dir: &Path, clock: &Arc<ManualClock>) {
    let store = standalone(dir);
    let old_ca = std::fs::read(dir.join("envoy/ca.crt")).unwrap();
    let hmac = std::fs::read(dir.join("envoy-oidc-hmac/hmac-secret")).unwrap();
    let sds = foreign_entries(dir);
    for component in COMPONENTS {
        let read = store
            .read_secret(&secret(component))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            read.data.keys().collect::<Vec<_>>(),
            TLS_FILES,
            "{component}"
        );
        assert!(read.version.starts_with("plain-"), "{}", read.version);
        for file in TLS_FILES {
            assert_eq!(
                read.data[file],
                std::fs::read(dir.join(component).join(file)).unwrap()
            );
        }
    }
    let read = store
        .read_secret(&secret("envoy-oidc-hmac"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.data["hmac-secret"], hmac);
    assert_trusted(
        &observe(&store, &profile()).await.unwrap(),
        clock.now(),
        "certgen's tree",
    );

    let report = engine(store.clone(), clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    // No TLS file changes without a CA key; the HMAC Secret gets the profile's labels,
    // which converts its folder: the key kept, now 0600 behind the `..data` swap.
    assert_eq!(report.writes, 1, "{:?}", report.events);
    assert!(
        report.summary.to_string().contains("not managed yet"),
        "{}",
        report.summary
    );
    assert_eq!(
        std::fs::read(dir.join("envoy-oidc-hmac/hmac-secret")).unwrap(),
        hmac,
        "the HMAC key is kept"
    );
    assert_is_layout_link(&dir.join("envoy-oidc-hmac/hmac-secret"));
    for component in COMPONENTS {
        for file in TLS_FILES {
            let meta = std::fs::symlink_metadata(dir.join(component).join(file)).unwrap();
            assert!(
                meta.is_file(),
                "{component}/{file} untouched before a rotation"
            );
        }
    }

    let mut phases = Vec::new();
    for i in 0..6 {
        let report = engine(store.clone(), clock, 5 + i)
            .run(&profile(), &options(true), RunMode::Once)
            .await
            .unwrap();
        phases.push(report.phase);
        let observed = observe(&store, &profile()).await.unwrap();
        assert_trusted(&observed, clock.now(), "adoption");
        if report.phase == Phase::Trust {
            for component in COMPONENTS {
                let bundle = std::fs::read(dir.join(component).join("ca.crt")).unwrap();
                assert_eq!(count_certs(&bundle), 2, "{component}: new and old CA");
                assert!(
                    bundle.ends_with(&old_ca),
                    "{component}: certgen's CA carried"
                );
                assert_is_layout_link(&dir.join(component).join("ca.crt"));
            }
        }
        if report.phase == Phase::Stable {
            break;
        }
        clock.advance(Duration::from_secs(301));
    }
    assert_eq!(phases, [Phase::Trust, Phase::Leaves, Phase::Stable]);
    for component in COMPONENTS {
        assert_eq!(visible_names_of_ours(dir, component), TLS_FILES);
        for file in TLS_FILES {
            assert_is_layout_link(&dir.join(component).join(file));
        }
        let bundle = std::fs::read(dir.join(component).join("ca.crt")).unwrap();
        assert!(
            bundle.ends_with(&old_ca),
            "{component}: the old CA stays carried"
        );
    }
    // The HMAC key is kept (OIDC sessions survive).
    assert_eq!(
        std::fs::read(dir.join("envoy-oidc-hmac/hmac-secret")).unwrap(),
        hmac
    );
    assert_is_layout_link(&dir.join("envoy-oidc-hmac/hmac-secret"));
    assert_eq!(foreign_entries(dir), sds, "the SDS files changed");
}

// ---- support ----------------------------------------------------------------------------

/// What `outputCertsForLocal` writes, from a CA generated here (its key then thrown away, as
/// upstream's is): folders 0755 and files 0644 (`internal/utils/file/file.go`, `WriteDir`
/// and `Write`), in place.
fn write_certgen_local_tree(dir: &Path, now: time::OffsetDateTime) {
    let mut entropy = SeededEntropy::new(77);
    let ca = Ca::generate(&CaParams::new("envoy-gateway"), now, &mut entropy).unwrap();
    let p = profile();
    let write = |folder: &str, file: &str, bytes: &[u8]| {
        let folder = dir.join(folder);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = folder.join(file);
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    };
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for c in &p.components {
        let leaf = ca
            .issue_leaf(&p.leaf_params(c).unwrap(), now, &mut entropy)
            .unwrap();
        write(&c.secret, "ca.crt", ca.cert_pem().as_bytes());
        write(&c.secret, "tls.crt", leaf.cert_pem.as_bytes());
        write(
            &c.secret,
            "tls.key",
            leaf.key_pem.expose_secret().as_bytes(),
        );
    }
    write("envoy-oidc-hmac", "hmac-secret", &[7u8; 32]);
}

/// The SDS files the controller writes into `envoy/` (`xds-trusted-ca.json`,
/// `xds-certificate.json`: `internal/infrastructure/common/proxy_sds.go:13-14`), 0644.
fn write_sds_files(envoy: &Path) {
    for (name, text) in [
        (
            "xds-trusted-ca.json",
            r#"{"resources":[{"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret","name":"xds_trusted_ca","validation_context":{"trusted_ca":{"filename":"ca.crt"}}}]}"#,
        ),
        (
            "xds-certificate.json",
            r#"{"resources":[{"@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret","name":"xds_certificate","tls_certificate":{"certificate_chain":{"filename":"tls.crt"},"private_key":{"filename":"tls.key"}}}]}"#,
        ),
    ] {
        let path = envoy.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

/// The names of a folder that are not the layout's (`..`-names), sorted.
fn visible_names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with(".."))
        .collect();
    names.sort();
    names
}

/// The names of `DIR/component` that certrotate owns (upstream's and links of its shape).
fn visible_names_of_ours(dir: &Path, component: &str) -> Vec<String> {
    visible_names(&dir.join(component))
        .into_iter()
        .filter(|n| !n.ends_with(".json"))
        .collect()
}

/// `path` is the layout's link `..data/NAME`, resolving to a regular file 0600 in a version
/// folder 0700.
fn assert_is_layout_link(path: &Path) {
    let name = path.file_name().unwrap();
    let target = std::fs::read_link(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(target, Path::new("..data").join(name), "{}", path.display());
    let file = std::fs::metadata(path).unwrap();
    assert!(file.is_file());
    assert_eq!(file.mode() & 0o777, 0o600, "{}", path.display());
    let folder = path.parent().unwrap();
    let version = folder.join(std::fs::read_link(folder.join("..data")).unwrap());
    let mode = std::fs::metadata(version).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o700, "{}", folder.display());
}

/// Every entry under DIR that is not the Secrets' (neither upstream's names, nor the
/// layout's `..` names and key links), with its kind, mode, owner, inode, mtime and content
/// (its SHA-256) or target.
fn foreign_entries(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for folder in std::fs::read_dir(dir).unwrap() {
        let folder = folder.unwrap().path();
        if !folder.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let ours = std::fs::read_link(&path)
                .is_ok_and(|target| target == Path::new("..data").join(&name));
            if ours
                || name.starts_with("..")
                || TLS_FILES.contains(&name.as_str())
                || name == "hmac-secret"
            {
                continue;
            }
            describe(dir, &path, &mut out);
        }
    }
    out
}

fn describe(base: &Path, path: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    let t = meta.file_type();
    let what = if t.is_symlink() {
        format!("link {:?}", std::fs::read_link(path).unwrap())
    } else if t.is_file() {
        let bytes = std::fs::read(path).unwrap();
        format!(
            "{} bytes sha256 {}",
            bytes.len(),
            certrotate_core::Fingerprint::of(&bytes)
        )
    } else {
        String::new()
    };
    out.insert(
        path.strip_prefix(base).unwrap().to_owned(),
        format!(
            "mode {:o} uid {} ino {} mtime {}.{} {what}",
            meta.mode(),
            meta.uid(),
            meta.ino(),
            meta.mtime(),
            meta.mtime_nsec()
        ),
    );
    if t.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            describe(base, &entry.unwrap().path(), out);
        }
    }
}
