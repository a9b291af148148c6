//! Issue 22, the exact wedge, through the binary against the fake API server: Envoy
//! Gateway installed by its chart (certgen's Secrets, no CA Secret) with the topology
//! injector's `caBundle` empty, as the chart's pre-install hook ships it. Before the fix,
//! `rotate --kube --overwrite` persisted `prepared`, then every run exited 1 ("it would
//! break trust for 3 pair(s) … webhook 1 caBundle") while `status` said "the next step
//! may run now". Now every run exits 0 and the rotation reaches stable, every pair
//! trusted, the `caBundle` filled.

#![cfg(feature = "kube")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../test-support/fake_server.rs"]
mod fake_server;

use std::collections::BTreeMap;

use assert_cmd::Command;
use certrotate_core::{Ca, CaParams, Profile, SeededEntropy};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

const NS: &str = "envoy-gateway-system";
const INJECTOR: &str = "envoy-gateway-topology-injector.envoy-gateway-system";

fn certrotate(kubeconfig: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::cargo_bin("certrotate")
        .unwrap()
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("PRIVATE KEY-----"));
    (out.status.code().unwrap_or(-1), text)
}

/// What upstream's chart leaves: certgen's three Secrets and the injector with an empty
/// `caBundle`.
fn chart_install(server: &fake_server::FakeServer) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client =
            kube::Client::try_from(kube::Config::new(server.url.parse().unwrap())).unwrap();
        // The binary reads the system clock: certgen's CA and leaves are made now.
        #[allow(clippy::disallowed_methods)]
        let now = time::OffsetDateTime::now_utc();
        let mut entropy = SeededEntropy::new(22);
        let ca = Ca::generate(&CaParams::new("envoy-gateway"), now, &mut entropy).unwrap();
        let profile = Profile::envoy_gateway(NS);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
        for c in &profile.components {
            let leaf = ca
                .issue_leaf(&profile.leaf_params(c).unwrap(), now, &mut entropy)
                .unwrap();
            let mut secret = Secret::default();
            secret.metadata.name = Some(c.secret.clone());
            secret.type_ = Some("kubernetes.io/tls".into());
            secret.data = Some(BTreeMap::from([
                (
                    "ca.crt".to_owned(),
                    ByteString(ca.cert_pem().as_bytes().to_vec()),
                ),
                ("tls.crt".to_owned(), ByteString(leaf.cert_pem.into_bytes())),
                (
                    "tls.key".to_owned(),
                    ByteString(leaf.key_pem.expose_secret().as_bytes().to_vec()),
                ),
            ]));
            secrets.create(&Default::default(), &secret).await.unwrap();
        }
        let webhooks: Api<MutatingWebhookConfiguration> = Api::all(client);
        let mut injector = MutatingWebhookConfiguration::default();
        injector.metadata.name = Some(INJECTOR.into());
        injector.webhooks = Some(vec![MutatingWebhook {
            name: "topology.webhook.gateway.envoyproxy.io".into(),
            admission_review_versions: vec!["v1".into()],
            side_effects: "None".into(),
            client_config: WebhookClientConfig {
                ca_bundle: Some(ByteString(Vec::new())),
                ..Default::default()
            },
            ..Default::default()
        }]);
        webhooks
            .create(&Default::default(), &injector)
            .await
            .unwrap();
    });
}

/// The injector's `caBundle` as it is now.
fn injector_bundle(server: &fake_server::FakeServer) -> Vec<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client =
            kube::Client::try_from(kube::Config::new(server.url.parse().unwrap())).unwrap();
        let webhooks: Api<MutatingWebhookConfiguration> = Api::all(client);
        let read = webhooks.get(INJECTOR).await.unwrap();
        read.webhooks.unwrap()[0]
            .client_config
            .ca_bundle
            .clone()
            .unwrap()
            .0
    })
}

#[test]
fn rotate_overwrite_on_a_chart_install_with_an_empty_ca_bundle_reaches_stable() {
    let server = fake_server::start(&[]);
    let kubeconfig = server.kubeconfig();
    chart_install(&server);
    let rotate = [
        "rotate",
        "--kube",
        "--overwrite",
        "--convergence-interval",
        "1s",
        "--allow-short-interval",
    ];
    let mut log = String::new();
    let mut done = false;
    for run in 0..8 {
        let (code, out) = certrotate(&kubeconfig, &rotate);
        log.push_str(&format!("--- run {run}: exit {code}\n{out}"));
        assert_eq!(code, 0, "run {run} exited {code}:\n{log}");
        if out.contains("done: CA") {
            done = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert!(done, "never reached stable:\n{log}");

    let (code, out) = certrotate(&kubeconfig, &["status", "--kube"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("phase:    stable"), "{out}");
    assert!(!out.contains("held:"), "{out}");
    let (code, out) = certrotate(&kubeconfig, &["check", "--kube"]);
    assert_eq!(code, 0, "every pair trusted:\n{out}");
    let bundle = injector_bundle(&server);
    assert!(
        String::from_utf8_lossy(&bundle).contains("BEGIN CERTIFICATE"),
        "the caBundle was filled"
    );
}
