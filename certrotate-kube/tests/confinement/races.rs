//! Reads racing writes, and the Secret key names local mode accepts.

#![allow(unused_imports)]

use super::*;

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
