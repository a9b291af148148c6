//! Installs not made by certrotate (adoption) and broken ones: keys repaired from the
//! current CA, a rotation away from an unusable CA.

use super::*;

pub async fn adoption_of_a_certgen_install<S: Store>(store: S) {
    let store = Arc::new(store);
    // What certgen made: component Secrets, no CA key anywhere.
    let _old = certgen_install(&*store, super::CERTGEN_VALIDITY).await;
    let clock = Arc::new(ManualClock::new(T0));
    let report = engine(store.clone(), &clock, 1)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    // No TLS Secret changes without a CA; the missing HMAC Secret, which needs none, is
    // created as certgen does (issue 12, item 5).
    let written: Vec<&ObjectRef> = report
        .events
        .iter()
        .filter_map(|e| match e {
            Event::SecretCreated { secret, .. } | Event::SecretUpdated { secret, .. } => {
                Some(secret)
            }
            _ => None,
        })
        .collect();
    assert_eq!(written, [&secret("envoy-oidc-hmac")]);
    assert_eq!(report.writes, 1);
    assert!(
        report.summary.to_string().contains("not managed yet"),
        "{}",
        report.summary
    );

    let mut phases = Vec::new();
    for i in 0..6 {
        let report = engine(store.clone(), &clock, 5 + i)
            .run(&profile(), &options(true), RunMode::Once)
            .await
            .unwrap();
        phases.push(report.phase);
        assert_trusted(
            &observe(&store, &profile()).await.unwrap(),
            clock.now(),
            "adoption",
        );
        if report.phase == Phase::Stable {
            break;
        }
        clock.advance(Duration::from_secs(301));
    }
    assert_eq!(phases, [Phase::Trust, Phase::Leaves, Phase::Stable]);
}

/// A component Secret whose `tls.key` is empty, truncated or another Secret's: a plain
/// run (no rotation asked) re-issues its leaf from the current CA; trust does not change.
pub async fn broken_keys_are_repaired_from_the_current_ca<S: Store>(store: S) {
    let store = Arc::new(store);
    let clock = Arc::new(ManualClock::new(T0));
    install(&store, &clock, 1).await;
    let before = observe(&store, &profile()).await.unwrap();
    // envoy: an empty key (the API server refuses a `kubernetes.io/tls` Secret without
    // one; `check_names_a_bad_tls_key` covers a missing key where a store allows it);
    // envoy-rate-limit: a truncated one; envoy-gateway: envoy's key.
    let foreign = before.secrets[&secret("envoy")].data["tls.key"].clone();
    let breakages: [(&str, Option<Vec<u8>>); 3] = [
        ("envoy", Some(Vec::new())),
        (
            "envoy-rate-limit",
            Some(b"-----BEGIN PRIVATE KEY-----\nMIIB".to_vec()),
        ),
        ("envoy-gateway", Some(foreign)),
    ];
    for (name, value) in breakages {
        let version = before.secrets[&secret(name)].version.clone();
        let mut update = SecretUpdate::default();
        update.data.insert("tls.key".into(), value);
        store
            .update_secret(&secret(name), &version, &update)
            .await
            .unwrap();
    }
    let broken = observe(&store, &profile()).await.unwrap();
    assert_eq!(
        check(&profile(), &broken, clock.now(), Duration::ZERO)
            .unwrap()
            .keys
            .len(),
        3
    );

    let report = engine(store.clone(), &clock, 2)
        .run(&profile(), &options(false), RunMode::Once)
        .await
        .unwrap();
    let repaired = observe(&store, &profile()).await.unwrap();
    let report_check = check(&profile(), &repaired, clock.now(), Duration::ZERO).unwrap();
    assert!(report_check.all_trusted(), "{report_check:?}");
    assert_eq!(ca_pem(&repaired), ca_pem(&before), "the CA did not change");
    for c in ["envoy-gateway", "envoy", "envoy-rate-limit"] {
        assert_eq!(
            repaired.secrets[&secret(c)].data[KEY_TRUST],
            before.secrets[&secret(c)].data[KEY_TRUST],
            "{c}: trust unchanged"
        );
        assert!(leaf_issued_by(&repaired, c, &ca_pem(&before), clock.now()));
    }
    assert_eq!(report.writes, 3, "{:?}", report.events);
}

/// A current CA that cannot be used (its key not its own or missing, not a CA, a weak
/// RSA-1024 key, expired): a plain run names the problem; a requested rotation goes away
/// from it through the same phases and ends with every leaf trusted on a new CA.
pub async fn a_requested_rotation_recovers_from_an_unusable_ca<S: Store>(make: impl Fn() -> S) {
    let weak = openssl_weak_ca();
    for breakage in [
        "key of another certificate",
        "key missing",
        "not a CA",
        "weak RSA-1024",
        "expired",
    ] {
        let store = Arc::new(make());
        let clock = Arc::new(ManualClock::new(T0));
        install(&store, &clock, 1).await;
        let before = observe(&store, &profile()).await.unwrap();
        let ca = secret("envoy-gateway-ca");
        let envoy = &before.secrets[&secret("envoy")];
        let mut update = SecretUpdate::default();
        // The current CA replaced by `crt` and `key`, as a hand-made install would have it.
        let mut replace = |crt: &[u8], key: &[u8]| {
            let fingerprint = inspect_pem(crt, &Origin::new("t"), T0).unwrap()[0]
                .fingerprint
                .to_string();
            update.data.insert("ca.crt".into(), Some(crt.to_vec()));
            update.data.insert("ca.key".into(), Some(key.to_vec()));
            update
                .annotations
                .insert("certrotate.io/current-ca".into(), Some(fingerprint));
        };
        match breakage {
            "key missing" => {
                update.data.insert("ca.key".into(), None);
            }
            "key of another certificate" => {
                update
                    .data
                    .insert("ca.key".into(), Some(envoy.data["tls.key"].clone()));
            }
            "not a CA" => replace(&envoy.data["tls.crt"], &envoy.data["tls.key"]),
            "weak RSA-1024" => replace(weak.0.as_bytes(), weak.1.as_bytes()),
            _ => {}
        }
        if breakage == "expired" {
            // Nobody ran it for six years: the CA (five years) and every leaf expired.
            clock.advance(Duration::from_secs(6 * 366 * 24 * 3600));
        } else {
            let version = before.secrets[&ca].version.clone();
            store.update_secret(&ca, &version, &update).await.unwrap();
        }

        if breakage != "expired" {
            let err = engine(store.clone(), &clock, 2)
                .run(&profile(), &options(false), RunMode::Once)
                .await
                .unwrap_err();
            let named = match breakage {
                "key of another certificate" => "does not match",
                "key missing" => "ca.key",
                "not a CA" => "not a CA",
                _ => "1024 bits",
            };
            assert!(
                chain(&err).contains("envoy-gateway-ca") && chain(&err).contains(named),
                "{breakage}: {}",
                chain(&err)
            );
        }

        let request = request_now(&*store).await;
        let report = engine(store.clone(), &clock, 3)
            .run(&profile(), &request, until_done())
            .await
            .unwrap_or_else(|e| panic!("{breakage}: {}", chain(&e)));
        assert_eq!(report.next, Next::Done, "{breakage}");
        let after = observe(&store, &profile()).await.unwrap();
        assert_ne!(ca_pem(&after), ca_pem(&before), "{breakage}: a new CA");
        assert_trusted(&after, clock.now(), breakage);
        let st = state(&*store).await;
        assert_eq!(st.phase, Phase::Stable);
        if breakage != "key missing" && breakage != "expired" {
            assert!(
                after.secrets[&ca].data.contains_key("unusable-ca.key"),
                "{breakage}: the unusable key is kept aside"
            );
        }
        for (name, s) in &after.secrets {
            if let Some(bundle) = s.data.get(KEY_TRUST) {
                let text = String::from_utf8_lossy(bundle);
                assert!(
                    !text.contains(weak.0.lines().nth(1).unwrap()),
                    "{breakage}: {name} must not carry the weak CA"
                );
            }
        }
    }
}

/// A self-signed RSA-1024 CA made by openssl (certrotate refuses to make one): its
/// certificate and key in PEM.
fn openssl_weak_ca() -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (crt, key) = (dir.path().join("ca.crt"), dir.path().join("ca.key"));
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-nodes", "-days", "3650", "-subj", "/CN=weak",
        ])
        .args(["-newkey", "rsa:1024", "-sha256", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (the tests need it on PATH)");
    assert!(status.success(), "openssl req");
    (
        std::fs::read_to_string(crt).unwrap(),
        std::fs::read_to_string(key).unwrap(),
    )
}

/// Instantiates the whole contract suite for one backend; `$make` builds a fresh store.
/// With `if $run`, each test returns at once where `$run` is false (a backend that is not
/// built here, which `$run` says in one line).
#[macro_export]
macro_rules! contract_suite {
    ($name:ident, $make:expr) => {
        $crate::contract_suite!($name, $make, if true);
    };
    ($name:ident, $make:expr, if $run:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn store_crud() {
                if !$run {
                    return;
                }
                contract::store_crud($make).await;
            }
            #[tokio::test]
            async fn install_then_rerun_writes_nothing() {
                if !$run {
                    return;
                }
                contract::install_then_rerun_writes_nothing($make).await;
            }
            #[tokio::test]
            async fn staged_rotation_keeps_trust_and_ends_with_two() {
                if !$run {
                    return;
                }
                contract::staged_rotation_keeps_trust_and_ends_with_two($make).await;
            }
            #[tokio::test]
            async fn one_phase_per_run() {
                if !$run {
                    return;
                }
                contract::one_phase_per_run($make).await;
            }
            #[tokio::test]
            async fn crash_at_every_write() {
                if !$run {
                    return;
                }
                contract::crash_at_every_write(|| $make).await;
            }
            #[tokio::test]
            async fn conflicts_re_read_and_re_plan() {
                if !$run {
                    return;
                }
                contract::conflicts_re_read_and_re_plan($make).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn racing_rotations_stay_consistent() {
                if !$run {
                    return;
                }
                contract::racing_rotations_stay_consistent($make).await;
            }
            #[tokio::test]
            async fn other_labels_and_annotations_survive() {
                if !$run {
                    return;
                }
                contract::other_labels_and_annotations_survive($make).await;
            }
            #[tokio::test]
            async fn adoption_of_a_certgen_install() {
                if !$run {
                    return;
                }
                contract::adoption_of_a_certgen_install($make).await;
            }
            #[tokio::test]
            async fn hmac_rotates_only_when_asked() {
                if !$run {
                    return;
                }
                contract::hmac_rotates_only_when_asked($make).await;
            }
            #[tokio::test]
            async fn drop_old_ca_retires_it() {
                if !$run {
                    return;
                }
                contract::drop_old_ca_retires_it($make).await;
            }
            #[tokio::test]
            async fn convergence_interval_is_persisted() {
                if !$run {
                    return;
                }
                contract::convergence_interval_is_persisted($make).await;
            }
            #[tokio::test]
            async fn future_phase_since_is_named_and_force_proceeds() {
                if !$run {
                    return;
                }
                contract::future_phase_since_is_named_and_force_proceeds($make).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn racing_requests_rotate_once() {
                if !$run {
                    return;
                }
                contract::racing_requests_rotate_once(|| $make).await;
            }
            #[tokio::test]
            async fn one_request_many_reconciles_and_a_restart_rotate_once() {
                if !$run {
                    return;
                }
                contract::one_request_many_reconciles_and_a_restart_rotate_once($make).await;
            }
            #[tokio::test]
            async fn three_years_of_daily_scheduled_rotation() {
                if !$run {
                    return;
                }
                contract::three_years_of_daily_scheduled_rotation($make).await;
            }
            #[tokio::test]
            async fn broken_keys_are_repaired_from_the_current_ca() {
                if !$run {
                    return;
                }
                contract::broken_keys_are_repaired_from_the_current_ca($make).await;
            }
            #[tokio::test]
            async fn a_requested_rotation_recovers_from_an_unusable_ca() {
                if !$run {
                    return;
                }
                contract::a_requested_rotation_recovers_from_an_unusable_ca(|| $make).await;
            }
            #[tokio::test]
            async fn single_step_breaks_trust_mid_rotation() {
                if !$run {
                    return;
                }
                contract::single_step_breaks_trust_mid_rotation(|| $make).await;
            }
            #[tokio::test]
            async fn a_change_during_a_wait_is_seen() {
                if !$run {
                    return;
                }
                contract::carried::a_change_during_a_wait_is_seen($make).await;
            }
            #[tokio::test]
            async fn an_empty_webhook_ca_bundle_never_wedges_an_adoption() {
                if !$run {
                    return;
                }
                contract::drift::an_empty_webhook_ca_bundle_never_wedges_an_adoption($make).await;
            }
            #[tokio::test]
            async fn a_webhook_recreated_empty_mid_rotation_is_restored() {
                if !$run {
                    return;
                }
                contract::drift::a_webhook_recreated_empty_mid_rotation_is_restored($make).await;
            }
            #[tokio::test]
            async fn a_ca_crt_that_lost_the_next_ca_mid_rotation() {
                if !$run {
                    return;
                }
                contract::drift::a_ca_crt_that_lost_the_next_ca_mid_rotation($make).await;
            }
            #[tokio::test]
            async fn a_ca_crt_that_lost_the_current_ca_mid_rotation_never_wedges() {
                if !$run {
                    return;
                }
                contract::drift::a_ca_crt_that_lost_the_current_ca_mid_rotation_never_wedges($make)
                    .await;
            }
            #[tokio::test]
            async fn random_drift_never_wedges() {
                if !$run {
                    return;
                }
                contract::drift::random_drift_never_wedges(|| $make, 24).await;
            }
            #[tokio::test]
            async fn a_certgen_install_is_adopted_on_purpose() {
                if !$run {
                    return;
                }
                contract::alarms::a_certgen_install_is_adopted_on_purpose($make).await;
            }
            #[tokio::test]
            async fn a_schedule_adopts_a_certgen_ca_within_its_window() {
                if !$run {
                    return;
                }
                contract::alarms::a_schedule_adopts_a_certgen_ca_within_its_window($make).await;
            }
            #[tokio::test]
            async fn the_previous_ca_is_retired_after_retire_after() {
                if !$run {
                    return;
                }
                contract::alarms::the_previous_ca_is_retired_after_retire_after($make).await;
            }
            #[tokio::test]
            async fn a_carried_ca_near_its_end_is_retired_early() {
                if !$run {
                    return;
                }
                contract::alarms::a_carried_ca_near_its_end_is_retired_early($make).await;
            }
            #[tokio::test]
            async fn drop_old_ca_on_a_stable_install_retires_now() {
                if !$run {
                    return;
                }
                contract::alarms::drop_old_ca_on_a_stable_install_retires_now($make).await;
            }
            #[tokio::test]
            async fn a_renewal_the_ca_caps_says_so_at_once() {
                if !$run {
                    return;
                }
                contract::alarms::a_renewal_the_ca_caps_says_so_at_once($make).await;
            }
        }
    };
}
