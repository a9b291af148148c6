//! The store contract itself: create, read, merge-update with versions, and what a write
//! must keep (other keys, labels and annotations).

use super::*;

pub async fn store_crud<S: Store>(store: S) {
    let s = secret("contract");
    assert!(store.read_secret(&s).await.unwrap().is_none());
    let mut new = NewSecret::default();
    new.secret_type = "Opaque".into();
    new.data = BTreeMap::from([("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())]);
    new.labels = BTreeMap::from([("app".into(), "x".into())]);
    new.annotations = BTreeMap::from([("keep".into(), "me".into())]);
    let v1 = store.create_secret(&s, &new).await.unwrap();
    assert!(matches!(
        store.create_secret(&s, &new).await,
        Err(StoreError::AlreadyExists)
    ));

    let read = store.read_secret(&s).await.unwrap().unwrap();
    assert_eq!(read.version, v1);
    assert_eq!(read.data["a"], b"1");
    assert_eq!(read.secret_type, "Opaque");
    assert_eq!(read.labels["app"], "x");

    let mut update = SecretUpdate::default();
    update.data = BTreeMap::from([
        ("a".into(), Some(b"10".to_vec())),
        ("b".into(), None),
        ("c".into(), Some(b"3".to_vec())),
    ]);
    update.annotations = BTreeMap::from([("new".into(), Some("yes".into()))]);
    let v2 = store.update_secret(&s, &v1, &update).await.unwrap();
    assert_ne!(v1, v2);
    let read = store.read_secret(&s).await.unwrap().unwrap();
    assert_eq!(read.version, v2);
    assert_eq!(
        read.data.keys().collect::<Vec<_>>(),
        ["a", "c"],
        "merge semantics"
    );
    assert_eq!(read.data["a"], b"10");
    assert_eq!(read.labels["app"], "x", "labels kept");
    assert_eq!(read.annotations["keep"], "me", "annotations kept");
    assert_eq!(read.annotations["new"], "yes");

    // A stale version is a conflict and changes nothing.
    assert!(matches!(
        store.update_secret(&s, &v1, &update).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.read_secret(&s).await.unwrap().unwrap().version, v2);
    assert!(matches!(
        store.update_secret(&secret("absent"), "1", &update).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn other_labels_and_annotations_survive<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    engine(store.clone(), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    let s = secret("envoy");
    let current = store.read_secret(&s).await.unwrap().unwrap();
    let mut update = SecretUpdate::default();
    update.labels = BTreeMap::from([("team".into(), "edge".into())]);
    update.annotations = BTreeMap::from([("owner".into(), Some("alice".into()))]);
    update.data = BTreeMap::from([("extra".into(), Some(b"keep".to_vec()))]);
    store
        .update_secret(&s, &current.version, &update)
        .await
        .unwrap();
    clock.advance(HOUR);
    engine(store.clone(), &clock, 2)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap();
    let after = store.read_secret(&s).await.unwrap().unwrap();
    assert_eq!(after.labels["team"], "edge");
    assert_eq!(after.labels["control-plane"], "envoy-gateway");
    assert_eq!(after.annotations["owner"], "alice");
    assert_eq!(after.data["extra"], b"keep");
}
