//! The contract suite, once per backend.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[cfg(feature = "kube")]
mod api_server;
mod contract;
#[cfg(feature = "kube")]
mod fake_server;
mod hooked;

use std::sync::Arc;

use certrotate_core::plan::{WebhookRef, WorkloadRef};
use certrotate_core::profile::{WebhookKind, WorkloadKind};
use certrotate_kube::{Clock, DirStore, Event, ManualClock, MemoryStore, RunMode, observe};
use contract::*;

contract_suite!(memory, certrotate_kube::MemoryStore::new());
contract_suite!(
    directory,
    certrotate_kube::DirStore::new(tempfile::tempdir().unwrap().keep())
);
contract_suite!(
    standalone_directory,
    certrotate_kube::DirStore::new(tempfile::tempdir().unwrap().keep())
        .with_layout(certrotate_kube::DirLayout::Standalone)
);
#[cfg(feature = "kube")]
contract_suite!(kubernetes, fake_server::store());
// The real kube-apiserver of test-support/controlplane (one line and no test where it is
// not built; required in CI).
#[cfg(feature = "kube")]
contract_suite!(real_api_server, api_server::store(), if api_server::available());

trust_gate_suite!(memory_trust_gate, certrotate_kube::MemoryStore::new());
trust_gate_suite!(
    directory_trust_gate,
    certrotate_kube::DirStore::new(tempfile::tempdir().unwrap().keep())
);
#[cfg(feature = "kube")]
trust_gate_suite!(kubernetes_trust_gate, fake_server::store());
#[cfg(feature = "kube")]
trust_gate_suite!(
    real_api_server_trust_gate,
    api_server::store(),
    if api_server::available()
);

/// The fake API server (test-support/kube-fake-server, own Cargo.lock) builds without a TLS
/// stack or a JSON-schema validator: its vendored kube-fake-client's trimmed manifest keeps
/// them out. They were about half of its cold build (205 CPU-seconds before, ~100 after), paid
/// by the README's test command; a kube-fake-client update that drops the patch, or a
/// feature that brings them back, fails here instead of quietly slowing every fresh clone.
#[cfg(feature = "kube")]
#[test]
fn the_fake_api_server_builds_without_a_tls_stack() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../test-support/kube-fake-server/Cargo.lock"
    );
    let lock = std::fs::read_to_string(path).unwrap();
    let packages: Vec<&str> = lock.split("[[package]]").skip(1).collect();
    let name = |p: &str| -> String {
        p.lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .and_then(|n| n.strip_suffix('"'))
            .unwrap_or_default()
            .to_owned()
    };
    for heavy in [
        "ring",
        "aws-lc-sys",
        "rustls",
        "hyper-rustls",
        "jsonschema",
        "reqwest",
        "schemars",
    ] {
        assert!(
            !packages.iter().any(|p| name(p) == heavy),
            "{heavy} is back in {path}: the fake API server never opens a TLS connection nor \
             validates schemas (test-support/kube-fake-server/vendor/kube-fake-client/Cargo.toml)"
        );
    }
    let fake_client = packages
        .iter()
        .find(|p| name(p) == "kube-fake-client")
        .expect("kube-fake-client in the fake's Cargo.lock");
    assert!(
        !fake_client.contains("source = "),
        "kube-fake-client comes from crates.io, not the trimmed copy in vendor/ ([patch.crates-io])"
    );
}

fn ratelimit() -> WorkloadRef {
    WorkloadRef {
        kind: WorkloadKind::Deployment,
        object: certrotate_core::plan::ObjectRef::new(NS, "envoy-ratelimit"),
    }
}

fn injector() -> WebhookRef {
    WebhookRef {
        kind: WebhookKind::Mutating,
        name: format!("envoy-gateway-topology-injector.{NS}"),
    }
}

/// Start-only workloads are restarted once per phase that changes what they mount, never
/// again on a rerun, and the next phase waits for their rollout.
#[tokio::test]
async fn restarts_once_per_phase_and_wait_for_rollouts() {
    let store = Arc::new(MemoryStore::new());
    store.insert_workload(ratelimit());
    let clock = Arc::new(ManualClock::new(T0));
    engine(store.clone(), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    assert_eq!(store.restarts(&ratelimit()), 0, "not on first install");

    store.manual_rollouts(true);
    clock.advance(HOUR);
    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &options(true), RunMode::Once)
        .await
        .unwrap();
    assert_eq!(store.restarts(&ratelimit()), 1, "trust phase restarts it");
    assert!(
        report
            .events
            .iter()
            .any(|e| matches!(e, Event::WorkloadRestarted { .. }))
    );
    let annotations = &store.snapshot().workloads[&ratelimit()].template_annotations;
    assert_eq!(
        annotations["kubectl.kubernetes.io/restartedAt"],
        "2026-06-01T01:00:00Z"
    );
    assert!(annotations.contains_key("certrotate.io/restarted-for"));

    // A rerun in the same phase does not restart again.
    engine(store.clone(), &clock, 3)
        .run(&profile(), &options(true), RunMode::Once)
        .await
        .unwrap();
    assert_eq!(store.restarts(&ratelimit()), 1, "no restart storm");

    // After the interval, the rollout still running holds the next phase back.
    clock.advance(std::time::Duration::from_secs(301));
    let report = engine(store.clone(), &clock, 4)
        .run(&profile(), &options(true), RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.writes, 0);
    assert!(
        report
            .events
            .iter()
            .any(|e| matches!(e, Event::WaitingForRollout { .. })),
        "{:?}",
        report.events
    );
    store.complete_rollout(&ratelimit());
    engine(store.clone(), &clock, 5)
        .run(&profile(), &options(true), RunMode::Once)
        .await
        .unwrap();
    assert_eq!(
        store.restarts(&ratelimit()),
        2,
        "leaves phase restarts it again"
    );
    store.complete_rollout(&ratelimit());
    clock.advance(std::time::Duration::from_secs(301));
    let report = engine(store.clone(), &clock, 6)
        .run(&profile(), &options(true), RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, certrotate_core::plan::Phase::Stable);
    assert_eq!(store.restarts(&ratelimit()), 2);
}

/// Webhook caBundles are bundled like ca.crt (upstream replaced them).
#[tokio::test]
async fn webhook_ca_bundles_are_bundled() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    engine(store.clone(), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    let ca = ca_pem(&store.snapshot());
    store.insert_webhook(injector(), vec![ca.clone()]);
    clock.advance(HOUR);
    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &options(true), RunMode::Once)
        .await
        .unwrap();
    assert!(
        report
            .events
            .iter()
            .any(|e| matches!(e, Event::WebhookUpdated { .. }))
    );
    let bundle = &store.snapshot().webhooks[&injector()].ca_bundles[0];
    assert_eq!(count_certs(bundle), 2);
    assert!(bundle.ends_with(&ca), "old CA kept");
    engine(store.clone(), &clock, 3)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap();
    assert_trusted(&store.snapshot(), clock.now(), "webhook");
}

/// Local mode: files 0600, folders 0700, the kubelet's layout, and a plain certgen --local
/// folder is adopted.
#[tokio::test]
async fn directory_layout_and_modes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path());
    let clock = Arc::new(ManualClock::new(T0));
    engine(store.clone(), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    let envoy = dir.path().join(NS).join("envoy");
    for key in ["ca.crt", "tls.crt", "tls.key"] {
        let path = envoy.join(key);
        assert!(
            std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }
    let mode = std::fs::metadata(dir.path().join(NS))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
    assert!(
        std::fs::read_link(envoy.join("..data"))
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("..v")
    );
    let key = std::fs::read_to_string(envoy.join("tls.key")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    // Restarts in local mode are reported, not silently dropped.
    let observed = observe(&store, &profile()).await.unwrap();
    assert!(observed.workloads.is_empty());
}

/// API server errors from the HTTP fake: transient ones are retried with backoff; a
/// persistent one stops the run with an error naming the Secret, with trust intact (that a
/// rerun then finishes is `crash_at_every_write`).
#[cfg(feature = "kube")]
#[tokio::test]
async fn api_errors_are_retried_then_reported_clearly() {
    use certrotate_core::plan::Next;

    let path = format!("/api/v1/namespaces/{NS}/secrets/envoy?");
    // Two 500s and a 429 (Retry-After: 1) on the first writes of the envoy Secret.
    let server = fake_server::start(&[
        "--fail",
        &format!("PATCH:{path}:500:2"),
        "--fail",
        &format!("PATCH:{path}:429:1"),
    ]);
    let store = Arc::new(fake_server::store_for(&server));
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap();
    assert_eq!(report.next, Next::Done);
    let patches = server
        .requests()
        .iter()
        .filter(|r| r.starts_with(&format!("PATCH {path}")))
        .count();
    assert!(
        patches >= 5,
        "3 injected failures + 2 successful writes: {patches}"
    );

    // Persistent 503: bounded retries, then an error that names the Secret.
    let server = fake_server::start(&["--fail", &format!("PATCH:{path}:503:1000")]);
    let store = Arc::new(fake_server::store_for(&server));
    install(&store, &clock, 3).await;
    let err = engine(store.clone(), &clock, 4)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap_err();
    let msg = chain(&err);
    assert!(
        msg.contains(&format!("writing secret {NS}/envoy")) && msg.contains("ServiceUnavailable"),
        "{msg}"
    );
    let attempts = server
        .requests()
        .iter()
        .filter(|r| r.starts_with(&format!("PATCH {path}")))
        .count();
    assert_eq!(attempts, 4, "one try and three retries");
    assert_trusted(
        &observe(&store, &profile()).await.unwrap(),
        clock.now(),
        "after a failed write",
    );
}

/// API timeouts. A request lost in a hung API server (`--hang`: never applied) is retried.
/// A write that is applied but answered too late (`--slow`: the client's read timeout fires
/// first) is the ambiguous case: the retry carries the same `resourceVersion`, so it gets
/// 409 instead of writing twice, and the engine re-reads and re-plans. Persistent timeouts
/// end, after bounded retries, in an error naming the Secret, with trust intact.
#[cfg(feature = "kube")]
#[tokio::test]
async fn api_timeouts_are_retried_and_ambiguous_writes_resolve() {
    use certrotate_core::plan::Next;

    let timeout = std::time::Duration::from_millis(300);
    let envoy = format!("/api/v1/namespaces/{NS}/secrets/envoy?");
    let gateway = format!("/api/v1/namespaces/{NS}/secrets/envoy-gateway");
    let server = fake_server::start(&[
        "--hang",
        &format!("GET:{gateway}:1500:1"),
        "--slow",
        &format!("PATCH:{envoy}:1500:2"),
    ]);
    let store = Arc::new(fake_server::store_with_timeout(&server, timeout));
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap();
    assert_eq!(report.next, Next::Done);
    let conflicts = report
        .events
        .iter()
        .filter(|e| matches!(e, Event::Conflict { .. }))
        .count();
    assert!(
        conflicts >= 1,
        "the late-answered write came back as 409: {conflicts}"
    );
    let requests = server.requests();
    let count = |prefix: &str| requests.iter().filter(|r| r.starts_with(prefix)).count();
    assert!(
        count(&format!("GET {gateway}")) >= 2,
        "the lost read was retried"
    );
    let observed = observe(&store, &profile()).await.unwrap();
    assert_trusted(&observed, clock.now(), "after timeouts");
    let new_ca = ca_pem(&observed);
    for c in ["envoy-gateway", "envoy", "envoy-rate-limit"] {
        let trust = &observed.secrets[&secret(c)].data[certrotate_core::plan::wire::KEY_TRUST];
        assert_eq!(
            count_certs(trust),
            2,
            "{c}: new CA + the old one, once each"
        );
        assert!(trust.starts_with(&new_ca), "{c}: one new CA everywhere");
    }
    println!(
        "timeouts: lost read retried; 2 late-answered writes resolved by {conflicts} re-plan(s)"
    );

    // Every write of one Secret hangs: bounded retries, then a clear error; trust intact.
    let server = fake_server::start(&["--hang", &format!("PATCH:{envoy}:1500:1000")]);
    let store = Arc::new(fake_server::store_with_timeout(&server, timeout));
    install(&store, &clock, 3).await;
    let err = engine(store.clone(), &clock, 4)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap_err();
    let msg = chain(&err);
    assert!(
        msg.starts_with(&format!(
            "writing secret {NS}/envoy: gave up after 4 attempts (the last one timed out)"
        )),
        "{msg}"
    );
    let attempts = server
        .requests()
        .iter()
        .filter(|r| r.starts_with(&format!("PATCH {envoy}")))
        .count();
    assert_eq!(attempts, 4, "one try and three retries");
    assert_trusted(
        &observe(&store, &profile()).await.unwrap(),
        clock.now(),
        "after persistent timeouts",
    );
    println!("timeouts: persistent write timeout reported after {attempts} attempts: {msg}");
}

/// The webhook's caBundle over HTTP: read, bundled with GET + a JSON patch, and read back.
#[cfg(feature = "kube")]
#[tokio::test]
async fn webhook_ca_bundle_over_http() {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::admissionregistration::v1::{
        MutatingWebhook, MutatingWebhookConfiguration, WebhookClientConfig,
    };

    let server = fake_server::start(&[]);
    let store = Arc::new(fake_server::store_for(&server));
    let clock = Arc::new(ManualClock::new(T0));
    engine(store.clone(), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    let old = ca_pem(&observe(&store, &profile()).await.unwrap());

    let mut config = kube::Config::new(server.url.parse().unwrap());
    config.default_retry = false;
    let api: kube::Api<MutatingWebhookConfiguration> =
        kube::Api::all(kube::Client::try_from(config).unwrap());
    let hook = |name: &str| MutatingWebhook {
        name: name.into(),
        admission_review_versions: vec!["v1".into()],
        side_effects: "None".into(),
        client_config: WebhookClientConfig {
            ca_bundle: Some(ByteString(old.clone())),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut object = MutatingWebhookConfiguration::default();
    object.metadata.name = Some(injector().name);
    object.webhooks = Some(vec![hook("a.example.com"), hook("b.example.com")]);
    api.create(&Default::default(), &object).await.unwrap();

    clock.advance(HOUR);
    engine(store.clone(), &clock, 2)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap();
    let read = api.get(&injector().name).await.unwrap();
    let new = ca_pem(&observe(&store, &profile()).await.unwrap());
    for hook in read.webhooks.unwrap() {
        let bundle = hook.client_config.ca_bundle.unwrap().0;
        assert_eq!(count_certs(&bundle), 2, "{}", hook.name);
        assert!(
            bundle.starts_with(&new) && bundle.ends_with(&old),
            "{}",
            hook.name
        );
    }
    assert_trusted(
        &observe(&store, &profile()).await.unwrap(),
        clock.now(),
        "webhook over HTTP",
    );
    let requests = server.requests();
    let webhook_writes: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("/mutatingwebhookconfigurations/") && !r.starts_with("GET "))
        .collect();
    assert!(!webhook_writes.is_empty());
    assert!(
        webhook_writes.iter().all(|r| r.starts_with("PATCH ")),
        "{webhook_writes:?}"
    );
}

/// A raw-JSON client of the fake API server (objects no Rust type fully knows).
#[cfg(feature = "kube")]
async fn raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> serde_json::Value {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(
            body.map(|b| serde_json::to_vec(b).unwrap())
                .unwrap_or_default(),
        )
        .unwrap();
    client.request::<serde_json::Value>(request).await.unwrap()
}

/// Red-team R3 (finding 7): the webhook configuration was read into k8s-openapi's types
/// and PUT back whole, dropping every field those types do not know (a newer API
/// server's, a vendor's). Now only the caBundles change: everything else, unknown fields
/// included, is as it was, and a webhook without a caBundle gets one.
#[cfg(feature = "kube")]
#[tokio::test]
async fn a_webhook_update_keeps_every_field_no_type_knows() {
    use certrotate_kube::WebhookStore as _;
    use serde_json::json;

    const PATH: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";
    let server = fake_server::start(&[]);
    let store = fake_server::store_for(&server);
    let mut config = kube::Config::new(server.url.parse().unwrap());
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let name = injector().name;
    let hook = |n: &str, client_config: serde_json::Value| {
        json!({
            "name": n,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "clientConfig": client_config,
            "futureField": {"mode": "strict", "n": 3},
        })
    };
    let object = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": name,
            "annotations": {"team": "edge", "note": "kept"},
            "labels": {"app": "topology"},
        },
        "x-vendor": {"tier": 1, "flags": ["a", "b"]},
        "webhooks": [
            hook("a.example.com", json!({
                "service": {"name": "eg", "namespace": NS, "path": "/inject", "port": 9443},
                "caBundle": "b2xk",
            })),
            hook("b.example.com", json!({"url": "https://b.example.com/hook"})),
        ],
    });
    raw(&client, "POST", PATH, Some(&object)).await;
    let before = raw(&client, "GET", &format!("{PATH}/{name}"), None).await;

    let webhook = injector();
    let read = store.read_webhook(&webhook).await.unwrap().unwrap();
    assert_eq!(read.ca_bundles, vec![b"old".to_vec(), Vec::new()]);
    store
        .update_webhook(&webhook, &read.version, &[b"new".to_vec(), b"new".to_vec()])
        .await
        .unwrap();
    let after = raw(&client, "GET", &format!("{PATH}/{name}"), None).await;

    // The expected object: the one before, with the two caBundles ("new" in base64).
    let mut expected = before.clone();
    expected["webhooks"][0]["clientConfig"]["caBundle"] = json!("bmV3");
    expected["webhooks"][1]["clientConfig"]["caBundle"] = json!("bmV3");
    let volatile = |mut v: serde_json::Value| {
        let meta = v["metadata"].as_object_mut().unwrap();
        for key in ["resourceVersion", "managedFields", "generation"] {
            meta.remove(key);
        }
        v
    };
    assert_ne!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert_eq!(volatile(after), volatile(expected));
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.starts_with(&format!("PATCH {PATH}/{name}"))),
        "{:?}",
        server.requests()
    );
}

/// A small tmpfs mounted for one test (needs root, as in CI), unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts one, or says why not. `.ci/run` sets `CERTROTATE_REQUIRE_MOUNT=1`, so there a
    /// machine where it cannot be mounted fails the test instead of skipping it.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap().keep();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(Self(dir));
        }
        assert!(
            std::env::var_os("CERTROTATE_REQUIRE_MOUNT").is_none(),
            "cannot mount a tmpfs (root needed) and CERTROTATE_REQUIRE_MOUNT is set"
        );
        println!("skipped: mounting a tmpfs needs root");
        None
    }

    fn remount(&self, mode: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {mode}");
    }

    /// Fills the filesystem, then gives `free` bytes back.
    fn fill_leaving(&self, free: u64) -> std::path::PathBuf {
        use std::io::Write as _;
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        while file.write_all(&chunk).is_ok() {}
        let len = file.metadata().unwrap().len();
        file.set_len(len.saturating_sub(free)).unwrap();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Every Secret of the profile on disk is whole: its files are exactly one version's.
fn assert_whole(root: &std::path::Path, context: &str) {
    for name in [
        "envoy-gateway-ca",
        "envoy-gateway",
        "envoy",
        "envoy-rate-limit",
    ] {
        let dir = root.join(NS).join(name);
        let current = std::fs::read_link(dir.join("..data")).unwrap();
        let versions: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().into_string().ok())
            .filter(|n| n.starts_with("..v"))
            .collect();
        assert_eq!(
            versions,
            [current.to_str().unwrap()],
            "{context}: {name}: only the current version is on disk"
        );
    }
}

/// Local mode on a full disk, at every amount of free space that stops a rotation part-way
/// (4 KiB steps on a small tmpfs), and on a read-only filesystem: a clear error naming the
/// file and the cause, every Secret whole (old or new, never a mix), trust intact, and once
/// space (or write access) is back a rerun finishes the rotation.
#[tokio::test]
async fn disk_full_and_read_only_directory() {
    let Some(fs) = Tmpfs::mount("512k") else {
        return;
    };
    let clock = Arc::new(ManualClock::new(T0));
    let (mut levels, mut failed) = (0, 0);
    for free in (0..).step_by(4096) {
        let root = fs.0.join(format!("run-{free}"));
        let store = Arc::new(DirStore::new(&root));
        install(&store, &clock, 1).await;
        let before = ca_pem(&observe(&store, &profile()).await.unwrap());
        let filler = fs.fill_leaving(free);
        let result = engine(store.clone(), &clock, 2)
            .run(&profile(), &options(true), until_done())
            .await;
        levels += 1;
        let context = format!("{free} bytes free");
        let observed = observe(&store, &profile()).await.unwrap();
        assert_trusted(&observed, clock.now(), &context);
        assert_whole(&root, &context);
        std::fs::remove_file(filler).unwrap();
        match result {
            Ok(_) => {
                assert_ne!(ca_pem(&observed), before, "{context}: rotated");
                break;
            }
            Err(e) => {
                failed += 1;
                let msg = chain(&e);
                assert!(
                    msg.contains("No space left on device") && msg.contains(NS),
                    "{context}: {msg}"
                );
            }
        }
        engine(store.clone(), &clock, 2)
            .run(&profile(), &options(true), until_done())
            .await
            .unwrap();
        let after = observe(&store, &profile()).await.unwrap();
        assert_ne!(ca_pem(&after), before, "{context}: the rerun rotated");
        assert_trusted(&after, clock.now(), &context);
        std::fs::remove_dir_all(&root).unwrap();
    }
    assert!(
        failed >= 3,
        "the sweep stopped rotations at several points: {failed}"
    );

    // Read-only: the same guarantees.
    let root = fs.0.join("read-only");
    let store = Arc::new(DirStore::new(&root));
    install(&store, &clock, 3).await;
    fs.remount("ro");
    let err = chain(
        &engine(store.clone(), &clock, 4)
            .run(&profile(), &options(true), until_done())
            .await
            .unwrap_err(),
    );
    fs.remount("rw");
    assert!(
        err.contains("Read-only file system") && err.contains(NS),
        "{err}"
    );
    assert_trusted(
        &observe(&store, &profile()).await.unwrap(),
        clock.now(),
        "read-only",
    );
    assert_whole(&root, "read-only");
    engine(store.clone(), &clock, 4)
        .run(&profile(), &options(true), until_done())
        .await
        .unwrap();
    println!(
        "disk full: {levels} free-space levels tried, {failed} stopped the rotation part-way; \
         trust intact and every Secret whole after each, and each rerun finished; \
         read-only: {err}"
    );
}

/// The three simulated years with the rate-limit Deployment present: it is restarted, and
/// only on runs that changed what it mounts (rotations, renewals, trimmed bundles).
#[tokio::test]
async fn three_years_of_daily_scheduled_rotation_restarts_only_on_change() {
    let store = MemoryStore::new();
    store.insert_workload(ratelimit());
    let restart_runs = contract::three_years_of_daily_scheduled_rotation(store).await;
    assert!(
        restart_runs > 3,
        "{restart_runs} runs restarted the workload"
    );
}

/// A missing webhook caBundle is written on install, and restored whenever it lacks the
/// current CA (a Helm upgrade that resets it, say).
#[tokio::test]
async fn webhook_ca_bundle_is_written_on_install_and_when_it_lacks_the_ca() {
    let store = Arc::new(MemoryStore::new());
    store.insert_webhook(injector(), vec![Vec::new(), Vec::new()]);
    let clock = Arc::new(ManualClock::new(T0));
    engine(store.clone(), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    let ca = ca_pem(&store.snapshot());
    assert_eq!(
        store.snapshot().webhooks[&injector()].ca_bundles,
        [ca.clone(), ca.clone()]
    );
    // Reset by someone else: the next run (no rotation asked) restores it.
    store.insert_webhook(injector(), vec![Vec::new(), ca.clone()]);
    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    assert!(
        report
            .events
            .iter()
            .any(|e| matches!(e, Event::WebhookUpdated { .. })),
        "{:?}",
        report.events
    );
    assert_eq!(
        store.snapshot().webhooks[&injector()].ca_bundles,
        [ca.clone(), ca]
    );
    // Then nothing more to write.
    let report = engine(store.clone(), &clock, 3)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.writes, 0);
}

/// A read that mixes a newer CA Secret (trust entered, converged) with component Secrets
/// from before the trust step makes the leaves step look as if it broke trust. The gate's
/// refusal is then the mix's, not the store's: the engine reads again (as after a
/// conflict) and goes on from what is really there. Before: the run failed with
/// "trust would break", which raced `rotate --overwrite` Jobs hit.
#[tokio::test]
async fn a_refusal_made_from_a_mixed_read_is_read_again() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let before = observe(&store, &profile()).await.unwrap();
    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &options(true), RunMode::Once)
        .await
        .unwrap();
    assert_eq!(report.phase, certrotate_core::plan::Phase::Trust);
    clock.advance(HOUR);
    let components = ["envoy-gateway", "envoy", "envoy-rate-limit"].map(secret);
    // Each component Secret is read once as it was before the trust step, then as it is.
    let stale: std::collections::BTreeMap<_, _> = components
        .iter()
        .map(|c| (c.clone(), before.secrets[c].clone()))
        .collect();
    let stale = std::sync::Mutex::new(stale);
    let mixed = hooked::Hooked::new(store.clone())
        .on_read(move |secret| stale.lock().unwrap().remove(secret));
    let report = engine(mixed, &clock, 3)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    assert!(
        report
            .events
            .iter()
            .any(|e| matches!(e, Event::Conflict { .. })),
        "{:?}",
        report.events
    );
    assert_eq!(report.phase, certrotate_core::plan::Phase::Leaves);
    assert_trusted(
        &observe(&store, &profile()).await.unwrap(),
        clock.now(),
        "after a mixed read",
    );
}
